"""Plugins: user modules that register tasks, methods and measurements.

A plugin is an ordinary Python module whose import registers entries (`TASKS.register`,
`METHODS.register`, `@measurement`). Two ways to name one:

- `metatoken run --import MODULE` (repeatable), which calls `load_plugins([MODULE, ...])`;
- an installed package's entry point in the `metatoken.tasks` group, naming a module or a
  callable taking no arguments (called once), read on every `load_plugins` call.

Worker processes and Ray nodes start with a fresh interpreter, so each calls
`load_plugins()` before it builds a task. The modules named so far travel in the
environment variable `METATOKEN_IMPORT` (comma-separated), which `load_plugins` sets, so
spawned workers inherit them; Ray nodes get it through `runtime_env={"env_vars": ...}`
(see `plugin_env()`), and the modules themselves must be importable there.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from metatoken.errors import UserError

ENTRY_POINT_GROUP = "metatoken.tasks"
IMPORT_ENV = "METATOKEN_IMPORT"
_called: set[str] = set()  # entry-point callables already run in this process


def _named(modules: list[str] | None) -> list[str]:
    """The modules asked for now, after those inherited through IMPORT_ENV, without repeats."""
    inherited = [m for m in os.environ.get(IMPORT_ENV, "").split(",") if m]
    return list(dict.fromkeys(inherited + list(modules or [])))


def _import(name: str, what: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and name.startswith(err.name):
            raise UserError(f"{what}: no module named {err.name!r} (is it on PYTHONPATH?)") from None
        raise UserError(f"{what}: importing it failed (ModuleNotFoundError: {err})") from None
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001  (a broken plugin is the user's error: one line)
        raise UserError(f"{what}: importing it failed ({type(err).__name__}: {err})") from None


def load_plugins(modules: list[str] | None = None) -> list[str]:
    """Import `modules` (plus those in METATOKEN_IMPORT) and every `metatoken.tasks` entry point."""
    # The built-in registries first, so a plugin may extend or refer to them.
    import metatoken.envs
    import metatoken.evaluate.measure
    import metatoken.methods  # noqa: F401

    names = _named(modules)
    for name in names:
        if not name.replace(".", "").replace("_", "").isalnum():
            raise UserError(f"--import {name!r}: not a module name")
        _import(name, f"--import {name}")
    if names:
        os.environ[IMPORT_ENV] = ",".join(names)
    loaded = list(names)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        what = f"entry point {ep.name!r} ({ep.value}) in group {ENTRY_POINT_GROUP}"
        module, _, attr = ep.value.partition(":")
        target = _import(module.strip(), what)
        if attr:
            if ep.value in _called:
                continue
            try:
                fn = getattr(target, attr.strip())
                fn()
            except UserError:
                raise
            except Exception as err:  # noqa: BLE001
                raise UserError(f"{what}: calling it failed ({type(err).__name__}: {err})") from None
            _called.add(ep.value)
        loaded.append(ep.value)
    return loaded


def plugin_env() -> dict[str, str]:
    """Environment variables a remote worker needs to load the same plugins (for Ray's runtime_env)."""
    value = os.environ.get(IMPORT_ENV, "")
    return {IMPORT_ENV: value} if value else {}
