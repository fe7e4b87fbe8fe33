"""Shared fixtures: a small reference dataset on the slice task, collected once per session, and the CLI in-process."""

import warnings
from dataclasses import dataclass

import pytest

from metatoken.data.collect import collect
from metatoken.envs import make_task


@pytest.fixture(scope="session")
def grid_task():
    return make_task("glitchgrid-teleport", {"summit_distance": 6, "reference_episodes": 60})


@pytest.fixture(scope="session")
def grid_dataset(grid_task):
    return collect(grid_task)


# Python's default filters hide these outside __main__, so a user never sees them on stderr.
_HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


@dataclass
class CliResult:
    """What a test reads of a finished `metatoken` command (the fields of subprocess.CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli_here(capfd, monkeypatch):
    """cli_here(args, cwd): `metatoken ARGS` through the CLI's entrypoint in this process, run in `cwd`.

    The same code parses, prints and picks the exit code as in a fresh interpreter, without
    importing torch again for every command. File descriptors 1 and 2 are captured, and every
    warning a user would see is appended to stderr, so a stray line still fails a one-line check.
    What only a fresh process shows (import-time output) is left to the tests that run a subprocess.
    """
    from metatoken.cli import entrypoint

    def run(args, cwd):
        monkeypatch.chdir(cwd)
        capfd.readouterr()  # only what this command prints
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # repeats too: a warning shown once per process is not missed
            try:
                entrypoint([str(a) for a in args])
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
        out, err = capfd.readouterr()
        shown = [f"{w.category.__name__}: {w.message}\n" for w in caught
                 if not issubclass(w.category, _HIDDEN_WARNINGS)]
        return CliResult(code, out, err + "".join(shown))
    return run
