"""The report's "what the policies do" section: each method's filmstrip beside the reference behaviour's.

Run directories carry their own strip (`experiments/run_one.py` draws one evaluation episode
per run); the reference strip is drawn here, from the task's best-skill scripted behaviour on
the same first evaluation seed, so a reader compares like with like.
"""

from __future__ import annotations

import html

import gymnasium as gym

from metatoken import seeds
from metatoken.envs import make_task
from metatoken.report.filmstrip import filmstrip, img_tag
from metatoken.report.tables import ExperimentData


def reference_strip(task_spec: dict) -> bytes | None:
    """A filmstrip of the task's best-skill reference behaviour; None when the env cannot draw itself."""
    task = make_task(task_spec["id"], task_spec.get("options", {}))
    env = task.make_env()
    try:
        drawable = "rgb_array" in env.metadata.get("render_modes", [])
    finally:
        env.close()
    if not drawable or not task.behaviours:
        return None
    best = max(task.behaviours, key=lambda b: b.skill)
    try:
        return filmstrip(task, best.make(), seeds.evaluation(0), title=f"reference {best.name}")
    except gym.error.DependencyNotInstalled:  # the env's renderer needs an optional package
        return None


def section(data: ExperimentData, task: str) -> str:
    """HTML for one task: the reference strip, then one strip per method that has one."""
    strips = [(m, data.filmstrips[(task, m)]) for m in data.methods if (task, m) in data.filmstrips]
    if not strips:
        return ""
    spec = next(t for t in data.spec["tasks"] if t["name"] == task)
    ref = reference_strip(spec)
    rows = [("reference behaviour", ref)] if ref is not None else []
    rows += strips
    body = "".join(f"<figure>{img_tag(png, f'{task}: {name}')}<figcaption>{html.escape(name)}</figcaption></figure>"
                   for name, png in rows)
    return f"<h3>{html.escape(task)}</h3>{body}"
