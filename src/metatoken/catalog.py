"""Everything a spec can name, for `metatoken list`: importing this registers all rooms."""

from __future__ import annotations

from metatoken.envs import TASKS
from metatoken.evaluate.measure import MEASUREMENTS
from metatoken.methods import METHODS
from metatoken.registry import Registry


def registries() -> list[tuple[str, Registry]]:
    out: list[tuple[str, Registry]] = [("tasks", TASKS), ("methods", METHODS),
                                       ("measurements", MEASUREMENTS)]
    try:  # condition kinds live with the predictor models
        from metatoken.models.conditions import CONDITIONS

        out.append(("conditions", CONDITIONS))
    except ImportError:
        pass
    return out
