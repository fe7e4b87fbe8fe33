"""The unmaintained `gym` package, imported once with its notice dropped.

d3rlpy (the `iql` and `cql` recipes) depends on `gym` 0.26, whose import prints a four-line
"Gym has been unmaintained" notice to stderr when `gym_notices` is installed, and
stable-baselines3 imports `gym` whenever it is installed (to accept old-style envs). Without this,
every metatoken command would print that notice, and a user error would no longer be one line.
metatoken itself uses Gymnasium only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys


def import_quietly() -> None:
    """Import `gym` (if installed and not yet imported) with whatever it prints to stderr dropped."""
    if "gym" in sys.modules or importlib.util.find_spec("gym") is None:
        return
    with contextlib.redirect_stderr(io.StringIO()):
        import gym  # noqa: F401
