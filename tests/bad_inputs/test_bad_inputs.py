"""The bad-input corpus, through the real CLI.

Every case asserts the same four things: exit code 2, exactly one line on stderr that
names the problem, no traceback, and nothing written (the working directory and any
experiment directory the command was pointed at are unchanged).

The cases in `IN_SUBPROCESS` run `metatoken` in a fresh interpreter, as a user would: the exit
code is the process's and stderr is all the process printed, import-time output included. The
others call the same `entrypoint(argv)` in this process (the `cli_here` fixture of tests/conftest.py:
working directory switched to the case's, file descriptors 1 and 2 captured, warnings counted as
stderr lines): the error message and exit code come from the same code, without a fresh import of
torch per case. The subprocess cases also run in-process on a copy of their files, and must agree.

- `specs/*.yaml`: one spec file per bad input; its first line `# expect: TEXT` is what the
  error line must contain.
- `CASES` below: bad inputs that need files built at test time (datasets, a finished
  experiment to report on or resume, tampered checkpoints) or bad command-line arguments.

A case that cannot pass yet may carry `Case(..., xfail="what is missing")`: it runs as
`xfail(strict=True)`, so the fix turns it red until the mark goes. None carries one now.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from metatoken.data import minari_io
from metatoken.data.collect import collect
from metatoken.envs import make_task

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
SPECS = sorted((HERE / "specs").glob("*.yaml"))
GOOD_SPEC = """name: tiny
tasks:
  - id: glitchgrid-teleport
    options: {summit_distance: 3, reference_episodes: 10}
methods: [{id: bc}]
seeds: [0, 1]
budgets: {gradient_steps: 3, eval_episodes: 2}
"""
PENDULUM_STEPS = 10
# One of each way in: a spec-file error, click and option errors, a bad dataset, a bad --out, `report`
# on a broken experiment and the tampered checkpoint (whose payload must not run in any process).
IN_SUBPROCESS = {"gradient_steps_bool", "unknown_backend", "address_without_ray", "dataset_nan_observations",
                 "out_under_proc", "report_corrupt_metrics", "checkpoint_pickle_payload"}


def _gym_notice() -> list[str]:
    """The lines the legacy `gym` package prints on import when it is installed (d3rlpy pulls it in).

    SB3 imports `gym` if it can; gym then prints a deprecation notice to stderr. It is not
    metatoken's output, so it is removed verbatim (and only it) before counting lines.
    """
    if importlib.util.find_spec("gym") is None or importlib.util.find_spec("gym_notices") is None:
        return []
    from importlib.metadata import version

    from gym_notices.notices import notices

    return notices.get(version("gym"), "").splitlines()


GYM_NOTICE = _gym_notice()


@dataclass
class Result:
    code: int
    stdout: str
    stderr_lines: list[str]


def cli_subprocess(args: list[str], cwd: Path) -> Result:
    """Run `metatoken ARGS` in a fresh interpreter, as a user would."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", "from metatoken.cli import entrypoint; entrypoint()", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    lines = proc.stderr.splitlines()
    if GYM_NOTICE and lines[:len(GYM_NOTICE)] == GYM_NOTICE:
        lines = lines[len(GYM_NOTICE):]
    return Result(proc.returncode, proc.stdout, lines)


@pytest.fixture
def cli(cli_here) -> Callable[..., Result]:
    """cli(args, cwd, fresh=False): in this process; `fresh`: in a subprocess and in this process, which must agree.

    The in-process call comes second and is run on a copy of `cwd` taken before the subprocess ran,
    so that both see the same files; agreeing on exit code, stdout and stderr shows the in-process
    path reports what a user's terminal would.
    """
    def in_process(args: list[str], cwd: Path) -> Result:
        r = cli_here(args, cwd)
        return Result(r.returncode, r.stdout, r.stderr.splitlines())

    def run(args: list[str], cwd: Path, fresh: bool = False) -> Result:
        if not fresh:
            return in_process(args, cwd)
        twin = cwd.with_name(cwd.name + "-twin")
        shutil.copytree(cwd, twin, symlinks=True)
        result = cli_subprocess(args, cwd)
        here = in_process(args, twin)
        same_paths = [line.replace(str(twin), str(cwd)) for line in [here.stdout, *here.stderr_lines]]
        assert (here.code, same_paths) == (result.code, [result.stdout, *result.stderr_lines])
        return result
    return run


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under `roots`: path -> (size, mtime in ns)."""
    out = {}
    for root in roots:
        if root.exists():
            for p in [root, *root.rglob("*")]:
                st = p.stat()
                out[str(p)] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return out


def assert_refused(result: Result, expect: str, before: dict, after: dict) -> None:
    """Exit 2, one stderr line naming the problem, no traceback, nothing written."""
    everything = result.stdout + "\n".join(result.stderr_lines)
    assert "Traceback" not in everything, everything
    assert len(result.stderr_lines) == 1, result.stderr_lines
    assert result.stderr_lines[0].startswith("error: ") and expect in result.stderr_lines[0], result.stderr_lines
    assert result.code == 2, (result.code, result.stderr_lines)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))[:5]


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_bad_spec_file(spec, tmp_path, cli):
    expect = spec.read_text().splitlines()[0].removeprefix("# expect: ")
    (tmp_path / "spec.yaml").write_text(spec.read_text())
    before = snapshot(tmp_path)
    result = cli(["run", "spec.yaml", "--out", "out"], tmp_path, fresh=spec.stem in IN_SUBPROCESS)
    assert_refused(result, expect, before, snapshot(tmp_path))


# ---- cases built at test time -------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A complete tiny experiment (two bc runs; seed 0's is pi_ref), made once; cases work on copies of it."""
    import yaml

    from metatoken.experiments.runner import run_experiment
    from metatoken.experiments.spec import parse_spec

    out = tmp_path_factory.mktemp("finished") / "exp"
    run_experiment(parse_spec(yaml.safe_load(GOOD_SPEC)), out, workers=1)
    return out


@pytest.fixture(scope="module")
def pendulum_data():
    task = make_task("gym", {"env_id": "Pendulum-v1", "reference_episodes": 4,
                             "max_episode_steps": PENDULUM_STEPS})
    return collect(task)


def _copy_experiment(finished: Path, tmp: Path) -> Path:
    dst = tmp / "exp"
    shutil.copytree(finished, dst)
    return dst


def _reference_policy_dir(exp: Path) -> Path:
    """pi_ref's saved policy: the grid's bc run at seed 0 is pi_ref (an ordinary run directory)."""
    (ref,) = exp.glob("runs/*__bc__seed0/policy")
    return ref


def _rerun_one(exp: Path) -> None:
    """Drop the seed-1 run so that `--resume` reuses pi_ref's run and trains this one again (which loads pi_ref)."""
    (run_dir,) = exp.glob("runs/*__bc__seed1")
    shutil.rmtree(run_dir)


class Payload:
    """Unpickling this creates the file `marker`: proof that a pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _write_bad_dataset(tmp: Path, data, change: Callable) -> Path:
    """A Pendulum dataset with one episode changed, a spec pointing a gym task at it; returns the spec."""
    bad = change(data)
    minari_io.save(bad, tmp / "user-data")
    (tmp / "spec.yaml").write_text(
        "name: mine\n"
        f"tasks: [{{id: gym, options: {{env_id: Pendulum-v1, dataset: user-data, "
        f"max_episode_steps: {PENDULUM_STEPS}}}}}]\n"
        "methods: [{id: bc}]\nseeds: [0]\nbudgets: {gradient_steps: 3, eval_episodes: 2}\n")
    return tmp / "spec.yaml"


def _episode_changed(**fields):
    def change(data):
        eps = list(data.episodes)
        ep = eps[1]
        eps[1] = replace(ep, **{k: f(ep) for k, f in fields.items()})
        return type(data)(eps, data.observation_space, data.action_space, data.task_key)
    return change


def _set(array_name: str, index, value):
    def f(ep):
        a = getattr(ep, array_name).copy()
        a[index] = value
        return a
    return f


BAD_DATASETS = {
    "dataset_nan_observations": (_episode_changed(observations=_set("observations", (3, 0), np.nan)),
                                 "episode 1 has non-finite observations (NaN or inf) at step 3"),
    "dataset_inf_observations": (_episode_changed(observations=_set("observations", (2, 2), np.inf)),
                                 "episode 1 has non-finite observations (NaN or inf) at step 2"),
    "dataset_nan_reward": (_episode_changed(rewards=_set("rewards", 5, np.nan)),
                           "episode 1 has non-finite rewards (NaN or inf) at step 5"),
    "dataset_mismatched_shape": (_episode_changed(observations=lambda ep: ep.observations[:, :2]),
                                 "episode 1: observations have shape (2,) per step, the space (3,)"),
    "dataset_mismatched_length": (_episode_changed(actions=lambda ep: ep.actions[:-1]),
                                  "episode 1 has 9 actions for 10 rewards (expected 10)"),
    "dataset_action_out_of_range": (_episode_changed(actions=_set("actions", 4, 7.5)),
                                    "episode 1: action at step 4 is outside the action space"),
    "dataset_empty": (lambda d: type(d)([], d.observation_space, d.action_space), "the dataset has no episodes"),
    "dataset_of_another_task": (lambda d: type(d)(d.episodes, d.observation_space, d.action_space,
                                                  "glitchgrid-teleport__data0"),
                                "recorded for task 'glitchgrid-teleport__data0'"),
}

@dataclass
class Case:
    """A bad input built at test time: setup(tmp, fixtures) -> (cli args, expected text, watched dirs)."""

    setup: Callable
    xfail: str | None = None


def _dataset_case(name):
    change, expect = BAD_DATASETS[name]

    def setup(tmp, finished, pendulum_data):
        _write_bad_dataset(tmp, pendulum_data, change)
        return ["run", "spec.yaml", "--out", "out"], expect, []
    return Case(setup)


def _dataset_missing(tmp, finished, pendulum_data):
    (tmp / "spec.yaml").write_text(
        "name: mine\ntasks: [{id: gym, options: {env_id: Pendulum-v1, dataset: no-such-dir}}]\n"
        "methods: [{id: bc}]\nseeds: [0]\nbudgets: {gradient_steps: 3, eval_episodes: 2}\n")
    return ["run", "spec.yaml", "--out", "out"], "dataset 'no-such-dir': no such directory", []


def _out_is_a_file(tmp, finished, pendulum_data):
    (tmp / "spec.yaml").write_text(GOOD_SPEC)
    (tmp / "taken").write_text("not a directory\n")
    return ["run", "spec.yaml", "--out", "taken"], "--out taken", []


def _out_under_proc(tmp, finished, pendulum_data):
    (tmp / "spec.yaml").write_text(GOOD_SPEC)
    return ["run", "spec.yaml", "--out", "/proc/metatoken-bad-input"], "--out /proc/metatoken-bad-input", []


def _report_corrupt_metrics(tmp, finished, pendulum_data):
    exp = _copy_experiment(finished, tmp)
    metrics = next(exp.glob("runs/*__seed1/metrics.json"))
    metrics.write_text('{"capability/return": 0.5,')
    return ["report", "exp"], "metrics.json", [exp]


def _report_empty_experiment_json(tmp, finished, pendulum_data):
    exp = _copy_experiment(finished, tmp)
    (exp / "experiment.json").write_text("{}")
    return ["report", "exp"], "experiment.json", [exp]


def _report_not_an_experiment(tmp, finished, pendulum_data):
    (tmp / "nothing").mkdir()
    return ["report", "nothing"], "not an experiment directory (no experiment.json)", []


def _checkpoint_config_mismatch(tmp, finished, pendulum_data):
    exp = _copy_experiment(finished, tmp)
    config = _reference_policy_dir(exp) / "config.json"
    data = json.loads(config.read_text())
    data["config"]["d_model"] = 32  # the weights are 64 wide
    config.write_text(json.dumps(data))
    _rerun_one(exp)
    (tmp / "spec.yaml").write_text(GOOD_SPEC)
    return ["run", "spec.yaml", "--out", "exp", "--resume"], "cannot load checkpoint", [exp]


def _checkpoint_pickle_payload(tmp, finished, pendulum_data):
    exp = _copy_experiment(finished, tmp)
    weights = _reference_policy_dir(exp) / "model.safetensors"
    weights.write_bytes(pickle.dumps(Payload(tmp / "PWNED")))
    _rerun_one(exp)
    (tmp / "spec.yaml").write_text(GOOD_SPEC)
    return ["run", "spec.yaml", "--out", "exp", "--resume"], "cannot load checkpoint", [exp]


def _spec_file_missing(tmp, finished, pendulum_data):
    return ["run", "nowhere.yaml"], "nowhere.yaml: no such spec file", []


def _workers_zero(tmp, finished, pendulum_data):
    (tmp / "spec.yaml").write_text(GOOD_SPEC)
    return ["run", "spec.yaml", "--workers", "0"], "--workers: must be >= 1, got 0", []


def _set_negative_budget(tmp, finished, pendulum_data):
    (tmp / "spec.yaml").write_text(GOOD_SPEC)
    return ["run", "spec.yaml", "--set", "budgets.gradient_steps=-3"], "budgets.gradient_steps", []


def _set_without_value(tmp, finished, pendulum_data):
    (tmp / "spec.yaml").write_text(GOOD_SPEC)
    return ["run", "spec.yaml", "--set", "seeds"], "--set 'seeds': expected key=value", []


def _address_without_ray(tmp, finished, pendulum_data):
    (tmp / "spec.yaml").write_text(GOOD_SPEC)
    return ["run", "spec.yaml", "--address", "127.0.0.1:6379"], "--address: only meaningful with --backend ray", []


def _import_unknown_module(tmp, finished, pendulum_data):
    (tmp / "spec.yaml").write_text(GOOD_SPEC)
    return ["run", "spec.yaml", "--import", "no_such_lab_plugin"], "no module named 'no_such_lab_plugin'", []


def _unknown_backend(tmp, finished, pendulum_data):
    (tmp / "spec.yaml").write_text(GOOD_SPEC)
    return ["run", "spec.yaml", "--backend", "slurm"], "--backend", []


CASES = {
    **{name: _dataset_case(name) for name in BAD_DATASETS},
    "dataset_missing": Case(_dataset_missing),
    "out_is_a_file": Case(_out_is_a_file),
    "out_under_proc": Case(_out_under_proc),
    "report_corrupt_metrics": Case(_report_corrupt_metrics),
    "report_empty_experiment_json": Case(_report_empty_experiment_json),
    "report_not_an_experiment": Case(_report_not_an_experiment),
    "checkpoint_config_mismatch": Case(_checkpoint_config_mismatch),
    "checkpoint_pickle_payload": Case(_checkpoint_pickle_payload),
    "spec_file_missing": Case(_spec_file_missing),
    "workers_zero": Case(_workers_zero),
    "set_negative_budget": Case(_set_negative_budget),
    "set_without_value": Case(_set_without_value),
    "address_without_ray": Case(_address_without_ray),
    "import_unknown_module": Case(_import_unknown_module),
    "unknown_backend": Case(_unknown_backend),
}


def _params():
    for name, case in CASES.items():
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        yield pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("name", list(_params()))
def test_bad_input(name, tmp_path, finished, pendulum_data, cli):
    work = tmp_path / "cwd"
    work.mkdir()
    args, expect, watched = CASES[name].setup(work, finished, pendulum_data)
    before = snapshot(work, *watched)
    result = cli(args, work, fresh=name in IN_SUBPROCESS)
    assert_refused(result, expect, before, snapshot(work, *watched))
    assert not (work / "PWNED").exists()


@pytest.mark.parametrize("name", sorted(BAD_DATASETS))
def test_bad_dataset_stops_before_training(name, tmp_path, pendulum_data, cli):
    """Refused before training: one line, exit 2, and no run or cached copy of the data."""
    _write_bad_dataset(tmp_path, pendulum_data, BAD_DATASETS[name][0])
    result = cli(["run", "spec.yaml", "--out", "out"], tmp_path)
    assert "Traceback" not in result.stdout + "\n".join(result.stderr_lines)
    assert result.code == 2 and len(result.stderr_lines) == 1 and BAD_DATASETS[name][1] in result.stderr_lines[0]
    assert not (tmp_path / "out" / "runs").exists() and not (tmp_path / "out" / "datasets").exists()


def test_pickle_payload_is_refused_and_never_executed(tmp_path, finished, cli):
    """A checkpoint whose weights file is a pickle: loading fails in one line, the payload never runs."""
    from metatoken.errors import UserError
    from metatoken.models.checkpoint import load_policy

    ref = tmp_path / "ref"
    shutil.copytree(_reference_policy_dir(finished), ref)
    (ref / "model.safetensors").write_bytes(pickle.dumps(Payload(tmp_path / "PWNED")))
    with pytest.raises(UserError) as err:
        load_policy(ref)
    assert "model.safetensors" in str(err.value) or str(ref) in str(err.value)
    assert not (tmp_path / "PWNED").exists()
    # and through the CLI: the resumed run refuses it too (its exit code is the runner's business)
    exp = _copy_experiment(finished, tmp_path)
    (_reference_policy_dir(exp) / "model.safetensors").write_bytes(pickle.dumps(Payload(tmp_path / "PWNED")))
    _rerun_one(exp)
    (tmp_path / "spec.yaml").write_text(GOOD_SPEC)
    result = cli(["run", "spec.yaml", "--out", "exp", "--resume"], tmp_path)
    assert result.code != 0 and not (tmp_path / "PWNED").exists()
    # the payload does work when unpickled: the check above could fail
    pickle.loads((ref / "model.safetensors").read_bytes())
    assert (tmp_path / "PWNED").exists()
