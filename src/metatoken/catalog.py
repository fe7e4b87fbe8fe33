"""Everything a spec can name, for `metatoken list`: importing this registers all rooms."""

from __future__ import annotations

from metatoken.envs import TASKS
from metatoken.evaluate.measure import MEASUREMENTS
from metatoken.methods import METHODS
from metatoken.models.conditions import CONDITIONS
from metatoken.registry import Registry
from metatoken.text import integration as _text  # noqa: F401  (registers the text task and recipes)


def registries() -> list[tuple[str, Registry]]:
    return [("tasks", TASKS), ("methods", METHODS), ("measurements", MEASUREMENTS),
            ("conditions", CONDITIONS)]
