"""The report's evidence sections: the claims table from claims.json and probability of improvement."""

import json

import numpy as np

from metatoken.report.evidence import claims_section, load_claims, poi_matrix, poi_section
from metatoken.report.tables import ExperimentData


def _data(values: dict[str, list[float]], metric="capability/intended") -> ExperimentData:
    spec = {"name": "e", "tasks": [{"name": "t"}], "methods": [{"name": m} for m in values]}
    return ExperimentData("e", spec, {metric: {("t", m): v for m, v in values.items()}})


def test_poi_matrix_known_answers():
    cube = poi_matrix(_data({"a": [1.0, 1.0, 1.0], "b": [0.0, 0.0, 0.0], "c": [0.0, 1.0]}), "t",
                      "capability/intended")
    assert np.isnan(cube[0, 0]).all()
    assert tuple(cube[0, 1]) == (1.0, 1.0, 1.0) and tuple(cube[1, 0]) == (0.0, 0.0, 0.0)
    # c's runs {0, 1} against a's {1, 1, 1}: half the pairs tie (1/2 each), half lose: 0.25
    assert cube[2, 0, 0] == 0.25 and cube[0, 2, 0] == 0.75
    assert 0.0 <= cube[2, 0, 1] <= 0.25 <= cube[2, 0, 2] <= 0.5


def test_poi_section_falls_back_and_skips_cleanly():
    text = poi_section(_data({"a": [1.0], "b": [0.0]}, metric="capability/normalized_return"))
    assert "capability/normalized_return" in text and "1.00 <span" in text
    assert "skipped" in poi_section(_data({"a": [1.0]}, metric="spookiness/exploit_rate"))


def test_claims_section_shows_each_row_as_written(tmp_path):
    assert load_claims(tmp_path) is None and "No claims.json" in claims_section(None)
    rows = [{"claim": f"C{i}", "statement": f"s{i}", "evidence": "e", "estimate": 0.25 * i if i < 3 else None,
             "ci_low": 0.1, "ci_high": None, "verdict": "supported" if i == 1 else "inconclusive",
             "reason": "r<&>"} for i in range(1, 10)]
    (tmp_path / "claims.json").write_text(json.dumps({"claims": rows}))
    text = claims_section(load_claims(tmp_path))
    assert [f"<b>C{i}</b>" in text for i in range(1, 10)] == [True] * 9
    assert "0.5 <span class='ci'>[0.1, —]</span>" in text  # C2's estimate; a missing bound is a dash
    assert text.count("verdict-supported") == 1 and "r&lt;&amp;&gt;" in text
