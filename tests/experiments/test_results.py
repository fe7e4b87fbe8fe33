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


def test_sparsity_is_computed_once_per_variant_and_kept_with_its_bound(tmp_path, monkeypatch):
    """The cache in the experiment directory answers the second call; an unbounded interval survives JSON."""
    from metatoken.envs.sparsity import estimated
    from metatoken.experiments import results

    calls = []

    def fake(task_id, options):
        calls.append((task_id, options["summit_distance"]))
        return estimated(0 if options["summit_distance"] > 10 else 30, 16_384)

    monkeypatch.setattr(results, "task_sparsity", fake)
    tasks = [("mountain", {"summit_distance": 20}), ("mountain", {"summit_distance": 2}),
             ("mountain", {"summit_distance": 20})]
    first = results.cached_sparsity(tmp_path, tasks)
    again = results.cached_sparsity(tmp_path, tasks[:1])
    assert calls == [("mountain", 20), ("mountain", 2)]  # one computation per variant, none on the second call
    far = again[results._cache_key(*tasks[0])]
    assert far == first[results._cache_key(*tasks[0])] and far.high == float("inf") and far.hits == 0
    assert far.bits == far.low > 12.0  # 0 of 16,384 episodes: bounded below at 12.06 bits
    meta = results.run_metadata({"task_options": {}, "hyperparameters": {}, "budgets": {}}, far)
    assert meta["task.sparsity_bits_high"] == float("inf")
    assert meta["task.sparsity_bits"] == meta["task.sparsity_bits_low"]
    near = first[results._cache_key(*tasks[1])]
    assert near.low < near.bits < near.high < 12.0
    path = tmp_path / results.SPARSITY_CACHE
    stored = json.loads(path.read_text())
    stored[results._cache_key(*tasks[1])] = {"bits": "garbled"}  # an entry of another shape is recomputed
    path.write_text(json.dumps(stored))
    assert results.cached_sparsity(tmp_path, tasks[1:2])[results._cache_key(*tasks[1])] == near
    assert calls[2:] == [("mountain", 2)]
    path.write_text("{not json")  # a damaged file likewise
    assert results.cached_sparsity(tmp_path, tasks[:1])[results._cache_key(*tasks[0])] == far


def test_reward_variants_of_one_env_share_one_sparsity_estimate(tmp_path, monkeypatch):
    """Sparsity plays the sparse variant, so gait 20 m and sparse 20 m are one estimate; 2 m is another."""
    from metatoken.envs.sparsity import estimated
    from metatoken.experiments import results

    calls = []

    def fake(task_id, options):
        calls.append(dict(options))
        return estimated(5, 16_384)

    monkeypatch.setattr(results, "task_sparsity", fake)
    tasks = [("mountain", {"summit_distance": 20, "reward": "gait"}),
             ("mountain", {"summit_distance": 20, "reward": "sparse"}),
             ("mountain", {"summit_distance": 2, "reward": "gait"})]
    out = results.cached_sparsity(tmp_path, tasks)
    assert [c["summit_distance"] for c in calls] == [20, 2]
    assert out[results._cache_key(*tasks[0])] == out[results._cache_key(*tasks[1])]


def test_mountain_sparsity_resolves_twelve_bits():
    """Mountain-v1 gets a Monte Carlo estimate (not NaN): the default 20 m summit is beyond 12 bits."""
    from metatoken.experiments.results import task_sparsity

    far = task_sparsity("mountain", {"summit_distance": 20, "reward": "gait"})  # the sparse variant is measured
    assert far.episodes == 16_384 and far.hits == 0 and far.bits >= 12.0 and far.high == float("inf")
