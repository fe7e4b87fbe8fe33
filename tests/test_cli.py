"""The real `metatoken` executable, end to end, including its user-error contract.

Most user-error cases call the CLI's entrypoint in this process (`cli_here`, tests/conftest.py):
they are about the message and exit code, and the bad-input corpus (tests/bad_inputs) checks that
the in-process and subprocess answers agree. Everything else runs the executable.
"""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).with_name("metatoken")


def cli(*args, cwd=ROOT):
    return subprocess.run([str(EXE), *map(str, args)], check=False, capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={**os.environ, "COLUMNS": "120"})


def test_demo_spec_end_to_end_with_tiny_overrides(tmp_path):
    out = tmp_path / "x"
    r = cli("run", "specs/demo.yaml", "--set", "seeds=[0]", "--set", "budgets.gradient_steps=40",
            "--set", "budgets.eval_episodes=3", "--set", "tasks.0.options.reference_episodes=30",
            "--set", "tasks.1.options.reference_episodes=30",
            "--set", "methods=[{id: bc, hyperparameters: {d_model: 16, n_layers: 1, context: 4}},"
                     " {id: condition, hyperparameters: {d_model: 16, n_layers: 1, context: 4}}]",
            "--out", out, "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert f"report:  {out / 'report.html'}" in r.stdout
    # stderr is a pipe, not a terminal: one plain line per finished run, no progress bars
    finished = sorted(ln.split("] ", 1)[1].split(" (")[0] for ln in r.stderr.splitlines() if ln.startswith("["))
    assert finished == sorted(f"run glitchgrid-teleport{t}__{m}__seed0 ok" for t in ("", "-sparse")
                              for m in ("bc", "condition"))
    assert "━" not in r.stderr
    path = out / "results.parquet"
    df = pd.read_parquet(path)
    assert list(df.columns)[:6] == ["experiment", "task", "method", "seed", "metric", "value"]  # then metadata
    assert set(df["method"]) == {"bc", "condition"} and set(df["seed"]) == {0}
    assert pl.read_parquet(path).height == len(df)
    n = duckdb.sql(f"select count(*) from '{path}' where metric = 'capability/return'").fetchall()[0][0]
    assert n == 4
    assert (out / "report.html").stat().st_size > 10_000
    r2 = cli("report", out)
    assert r2.returncode == 0 and "report.html" in r2.stdout


def test_relative_out_directory(tmp_path):
    """`make demo` passes a relative --out; every room must cope with relative paths."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "demo.yaml").write_text((ROOT / "specs" / "demo.yaml").read_text())
    r = cli("run", "specs/demo.yaml", "--out", "runs/rel", "--set", "seeds=[0]",
            "--set", "methods=[{id: condition, hyperparameters: {d_model: 16, n_layers: 1, context: 4}}]",
            "--set", "budgets={gradient_steps: 20, eval_episodes: 2}",
            "--set", "tasks.0.options.reference_episodes=20", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "report:  runs/rel/report.html" in r.stdout
    assert (tmp_path / "runs" / "rel" / "results.parquet").is_file()


def _one_line_exit_2(r):
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.mark.parametrize(
    "yaml_text, expected",
    [
        ("name: x\ntasks: [{id: glitchgrid-teleport}]\nmethods: [{id: bc}]\nseeds: [0]\ncolour: red\n",
         "colour: unknown key"),
        ("name: x\ntasks: [{id: nope}]\nmethods: [{id: bc}]\nseeds: [0]\n", "tasks[0].id: task 'nope'"),
        ("name: x\ntasks: [{id: glitchgrid-teleport}]\nmethods: [{id: bc}]\nseeds: [0\n", "invalid YAML"),
        ("name: x\ntasks: [{id: glitchgrid-teleport}]\nmethods: [{id: sgd}]\nseeds: [0]\n",
         "methods[0].id: method 'sgd'"),
    ],
)
def test_malformed_spec_is_one_line_and_exit_2(tmp_path, yaml_text, expected, cli_here):
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml_text)
    out = tmp_path / "out"
    line = _one_line_exit_2(cli_here(["run", spec, "--out", out], ROOT))
    assert expected in line and "bad.yaml" in line
    assert not out.exists()  # nothing half-written


@pytest.mark.parametrize(
    "override, expected",
    [("seeds", "expected key=value"), ("budgets.gradient_steps=-1", "budgets.gradient_steps"),
     ("methods.7.id=bc", "methods.7"), ("budgets.nope=1", "budgets.nope: unknown key")],
)
def test_bad_set_is_one_line_and_exit_2(tmp_path, override, expected, cli_here):
    line = _one_line_exit_2(cli_here(["run", "specs/demo.yaml", "--set", override, "--out", tmp_path / "o"], ROOT))
    assert expected in line
    assert not (tmp_path / "o").exists()


def test_missing_files_and_unknown_ids(tmp_path, cli_here):
    assert "no such spec file" in _one_line_exit_2(cli("run", tmp_path / "none.yaml"))
    assert "not an experiment directory" in _one_line_exit_2(cli_here(["report", tmp_path], ROOT))
    assert "unknown task id 'nope'" in _one_line_exit_2(cli_here(["collect", "nope", "--out", tmp_path], ROOT))


@pytest.mark.parametrize(
    "args, expected",
    [(["run", "specs/demo.yaml", "--backend", "slurm"], "'--backend': Value error, 'slurm' is not one of"),
     (["run", "specs/demo.yaml", "--colour", "red"], "No such option: --colour"),
     (["run"], "Missing argument 'spec'"),
     (["frobnicate"], "No such command 'frobnicate'")],
)
def test_usage_errors_are_one_line_and_exit_2(args, expected):
    """Click's usage errors come out like a UserError: one `error:` line, not a box with usage and hints."""
    assert expected in _one_line_exit_2(cli(*args))


def test_help_still_exits_0():
    r = cli("run", "--help")
    assert r.returncode == 0 and "--backend" in r.stdout and r.stderr == ""


def test_list_and_version():
    r = cli("list")
    assert r.returncode == 0
    for word in ("tasks:", "glitchgrid-teleport", "methods:", "bc", "condition", "measurements:",
                 "capability", "controllability"):
        assert word in r.stdout
    v = cli("--version")
    assert v.returncode == 0 and v.stdout.startswith("metatoken ")


def test_collect_writes_a_minari_dataset(tmp_path):
    r = cli("collect", "glitchgrid-teleport", "--out", tmp_path, "--set", "reference_episodes=10")
    assert r.returncode == 0, r.stderr
    assert "10 episodes" in r.stdout
    assert list(tmp_path.glob("glitchgrid-teleport__*/data/main_data.hdf5"))
