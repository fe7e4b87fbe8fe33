"""The run directory layout: atomic writes, landing a run, stale temporaries."""

import json

import pytest

from metatoken.experiments import rundir


def test_write_json_is_atomic_and_leaves_no_temporary(tmp_path):
    path = tmp_path / rundir.METRICS
    rundir.write_json(path, {"b": 1.5, "a": float("nan")})
    assert json.loads(path.read_text().replace("NaN", "null")) == {"a": None, "b": 1.5}
    assert [p.name for p in tmp_path.iterdir()] == [rundir.METRICS]


def test_atomic_file_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / rundir.RESULTS
    path.write_text("old")
    with pytest.raises(RuntimeError), rundir.atomic_file(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [rundir.RESULTS]


def test_land_replaces_an_older_run_and_listing_skips_temporaries(tmp_path):
    exp = rundir.ExperimentDir(tmp_path)
    old = exp.run("t__bc__seed0")
    old.path.mkdir(parents=True)
    rundir.write_json(old.error, {"error": "boom"})
    tmp = rundir.temporary_run_dir(exp.runs, "t__bc__seed0")
    rundir.write_json(tmp.metrics, {"x": 1.0})
    assert [d.run_id for d in exp.run_dirs()] == ["t__bc__seed0"]  # the temporary one is not listed
    landed = rundir.land(tmp, exp.runs, "t__bc__seed0")
    assert landed.is_complete() and not landed.is_failed() and landed.read_metrics() == {"x": 1.0}


def test_stale_temporaries_are_removed(tmp_path):
    exp = rundir.ExperimentDir(tmp_path)
    stale = rundir.temporary_run_dir(exp.runs, "t__bc__seed1")
    (stale.path / "half.bin").write_bytes(b"x")
    keep = exp.run("t__bc__seed0")
    keep.path.mkdir()
    assert exp.remove_stale_temporaries() == [stale.path]
    assert [p.name for p in exp.runs.iterdir()] == ["t__bc__seed0"]
    rundir.remove_temporaries(exp.runs, "t__bc__seed0")  # nothing of that run is temporary
    assert keep.path.is_dir()
