"""Plugins: `--import MODULE` and the `metatoken.tasks` entry-point group make user tasks visible,
here and in freshly started worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from metatoken import plugins
from metatoken.envs import TASKS, make_task
from metatoken.errors import UserError
from metatoken.experiments.spec import parse_spec

PLUGIN = """
from pydantic import BaseModel, ConfigDict
from metatoken.envs.task import TASKS, TaskDef
from metatoken.envs.gym_task import GymOptions, build_gym_task


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    g: float = 10.0


def build(o):
    return build_gym_task(GymOptions(env_id="Pendulum-v1", env_kwargs={{"g": o.g}}))


TASKS.register("{task_id}", TaskDef(Options, build), "Pendulum-v1 from a plugin.")
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A directory on sys.path for plugin modules; METATOKEN_IMPORT restored afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.IMPORT_ENV, "")  # recorded, so teardown removes what load_plugins sets
    monkeypatch.delenv(plugins.IMPORT_ENV)
    return tmp_path


def _check_one_line(err, *parts):
    text = str(err.value)
    assert "\n" not in text and all(p in text for p in parts), text


def test_import_registers_a_task_and_exports_it_to_workers(plugin_dir):
    (plugin_dir / "my_lab_tasks.py").write_text(textwrap.dedent(PLUGIN.format(task_id="my-pendulum")))
    assert "my-pendulum" not in TASKS
    assert plugins.load_plugins(["my_lab_tasks"]) == ["my_lab_tasks"]
    assert "my-pendulum" in TASKS
    assert make_task("my-pendulum", {"g": 3.0}).env_kwargs == {"g": 3.0}
    spec = {"name": "p", "tasks": [{"id": "my-pendulum"}], "methods": [{"id": "bc"}], "seeds": [0]}
    assert parse_spec(spec).tasks[0].id == "my-pendulum"
    assert plugins.load_plugins(["my_lab_tasks"]) == ["my_lab_tasks"]  # twice: no double registration
    assert os.environ[plugins.IMPORT_ENV] == "my_lab_tasks"
    assert plugins.plugin_env() == {plugins.IMPORT_ENV: "my_lab_tasks"}
    # A fresh interpreter (as a spawned worker or a Ray node is) sees the task after load_plugins().
    probe = ("from metatoken.plugins import load_plugins; load_plugins(); "
             "from metatoken.envs import TASKS; print('my-pendulum' in TASKS)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), *sys.path])}
    seen = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert seen.stdout.strip() == "True"
    env.pop(plugins.IMPORT_ENV)
    unseen = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert unseen.stdout.strip() == "False"


def test_entry_point_group_is_read(plugin_dir):
    """An installed distribution (a .dist-info on sys.path) whose entry point names a callable."""
    (plugin_dir / "ep_lab_tasks.py").write_text(
        "def register():\n" + textwrap.indent(textwrap.dedent(PLUGIN.format(task_id="ep-pendulum")), "    "))
    dist = plugin_dir / "ep_lab-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-lab\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[metatoken.tasks]\nep = ep_lab_tasks:register\n")
    assert "ep-pendulum" not in TASKS
    assert "ep_lab_tasks:register" in plugins.load_plugins()
    assert "ep-pendulum" in TASKS
    plugins.load_plugins()  # the callable runs once per process, not once per call
    assert make_task("ep-pendulum").env_id == "Pendulum-v1"


@pytest.mark.parametrize("name, message", [
    ("no_such_plugin_mod", "--import no_such_plugin_mod: no module named 'no_such_plugin_mod'"),
    ("bad name!", "not a module name"),
    ("broken_plugin_mod", "--import broken_plugin_mod: importing it failed (ZeroDivisionError"),
])
def test_bad_plugin_is_one_line(plugin_dir, name, message):
    (plugin_dir / "broken_plugin_mod.py").write_text("x = 1 / 0\n")
    with pytest.raises(UserError) as err:
        plugins.load_plugins([name])
    _check_one_line(err, message)
