"""The results store's claims seam: claims read method ids (not labels) and the metadata columns."""

import json

import pyarrow as pa

from metatoken.experiments.results import SCHEMA, claims_frame, write_claims


def _table(spearman: dict[str, list[float]]) -> pa.Table:
    """Long rows of controllability/spearman per (label, method id) with a per-run hp column."""
    rows = []
    for label, values in spearman.items():
        method_id = label.split("-lr=")[0]
        lr = float(label.split("=")[1]) if "=" in label else None
        for seed, v in enumerate(values):
            rows.append({"experiment": "x", "task": "t", "method": label, "seed": seed,
                         "metric": "controllability/spearman", "value": v, "method_id": method_id,
                         "task_id": "glitchgrid-teleport", "hp.lr": lr})
    cols = {name: [r[name] for r in rows] for name in [*SCHEMA.names, "hp.lr"]}
    return pa.table(cols, schema=SCHEMA.append(pa.field("hp.lr", pa.float64())))


def test_claims_read_method_ids_so_labelled_entries_count_as_their_method(tmp_path):
    table = _table({"condition-lr=0.1": [0.9, 0.95, 0.92, 0.97, 0.93], "condition-lr=0.2": [0.91, 0.94, 0.96],
                    "bc": [0.1, 0.0, 0.2]})
    frame = claims_frame(table)
    assert set(frame["method"]) == {"condition", "bc"} and "label" in frame.columns
    claims = json.loads(write_claims(tmp_path, table).read_text())["claims"]
    assert [c["claim"] for c in claims] == [f"C{i}" for i in range(1, 10)]
    c5 = claims[4]
    # every condition run's rho lies in [0.9, 0.97], so the interval of their mean is above rho0 = 0.5
    assert c5["verdict"] == "supported" and 0.9 <= c5["ci_low"] <= c5["estimate"] <= c5["ci_high"] <= 0.97
    assert claims[0]["verdict"] == "inconclusive" and claims[0]["reason"]  # no ppo runs: C1 cannot be tested


def test_claims_contradict_an_uncontrollable_predictor(tmp_path):
    claims = json.loads(write_claims(tmp_path, _table({"condition": [0.0, 0.1, -0.1, 0.05]})).read_text())
    assert claims["claims"][4]["verdict"] == "contradicted"
