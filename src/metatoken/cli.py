"""The `metatoken` command line: parse, call, print. User errors exit 2 with one line."""

from __future__ import annotations

import importlib.util
import sys
from enum import Enum
from importlib import resources
from pathlib import Path

import typer

try:  # typer carries its own copy of click; its exceptions are the ones raised
    from typer._click import exceptions as click_errors
except ImportError:  # older typer: plain click
    from click import exceptions as click_errors

from metatoken.errors import UserError
from metatoken.experiments.rundir import ERROR, EXPERIMENT, ExperimentDir

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Condition-token predictors vs RL baselines: capability, controllability, "
                       "spookiness and the amount of RL, side by side.")


def _version(value: bool) -> None:
    if value:
        from metatoken import __version__

        typer.echo(f"metatoken {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Show the version and exit.")) -> None:
    """metatoken: does reducing the amount of RL for a given capability level make a system safer?"""


class Backend(str, Enum):
    local = "local"
    ray = "ray"


def _run(spec_path: Path, out: Path | None, resume: bool, workers: int | None,
         overrides: list[str], backend: Backend = Backend.local, address: str | None = None,
         retries: int = 1, imports: list[str] | None = None) -> None:
    from metatoken.experiments.spec import load_spec
    from metatoken.plugins import load_plugins

    load_plugins(imports)  # user tasks, methods and measurements, before the spec names them
    spec = load_spec(spec_path, overrides)
    if workers is not None and workers < 1:
        raise UserError(f"--workers: must be >= 1, got {workers}")
    if backend is Backend.ray and importlib.util.find_spec("ray") is None:
        raise UserError("--backend ray: Ray is not installed (pip install 'metatoken[ray]')")
    if address and backend is not Backend.ray:
        raise UserError("--address: only meaningful with --backend ray")
    if retries < 0:
        raise UserError(f"--retries: must be >= 0, got {retries}")
    # the runner and the report pull in pandas and matplotlib: only once the spec and options are known good
    from metatoken.experiments.runner import run_experiment
    from metatoken.report.html import write_report

    out_dir = out or Path("runs") / spec.name
    outcome = run_experiment(spec, out_dir, workers=workers, resume=resume,
                             backend=backend.value, address=address, retries=retries)
    typer.echo(f"results: {outcome.results_path}")
    typer.echo(f"report:  {write_report(out_dir)}")
    if outcome.failed:
        typer.echo(f"{len(outcome.failed)} run(s) failed; see {ERROR} in their run directories",
                   err=True)
        raise typer.Exit(1)


@app.command()
def run(
    spec: Path = typer.Argument(..., help="Experiment spec (YAML)."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default runs/<name>)."),
    resume: bool = typer.Option(False, "--resume",
                                help="Reuse complete runs whose identity (everything that determines them) "
                                     "is unchanged; re-run the others."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (default: one per core)."),
    set_: list[str] = typer.Option([], "--set", help="Override a spec field: key.path=value (YAML value)."),
    backend: Backend = typer.Option(Backend.local, "--backend",
                                    help="local: worker processes here; ray: tasks on a Ray cluster."),
    address: str | None = typer.Option(None, "--address",
                                       help="Ray cluster address (default: start a local Ray instance)."),
    retries: int = typer.Option(1, "--retries", help="Retries of a run whose worker process dies."),
    imports: list[str] = typer.Option([], "--import",
                                      help="A module that registers tasks, methods or measurements (repeatable)."),
) -> None:
    """Run every task × method × seed of SPEC, then write its results table and report."""
    _run(spec, out, resume, workers, set_, backend, address, retries, imports)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Output directory."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes."),
) -> None:
    """Run the embedded demo spec (specs/demo.yaml) end to end."""
    with resources.as_file(resources.files("metatoken") / "specs" / "demo.yaml") as spec:
        _run(spec, out, False, workers, [])


@app.command()
def report(run_dir: Path = typer.Argument(..., help="An experiment output directory.")) -> None:
    """Rebuild RUN_DIR's results table and report from its run directories."""
    from metatoken.experiments.results import write_results
    from metatoken.report.html import write_report

    if not ExperimentDir(run_dir).experiment.is_file():
        raise UserError(f"{run_dir}: not an experiment directory (no {EXPERIMENT})")
    write_results(run_dir)
    typer.echo(f"report: {write_report(run_dir)}")


@app.command("list")
def list_() -> None:
    """List tasks, methods, measurements (and condition kinds), one line of doc each."""
    from metatoken import catalog

    for title, registry in catalog.registries():
        typer.echo(f"{title}:")
        for entry in registry:
            typer.echo(f"  {entry.id:<24} {entry.doc}")


@app.command()
def collect(
    task: str = typer.Argument(..., help="Task id (see `metatoken list`)."),
    out: Path = typer.Option(Path("datasets"), "--out", help="Directory for the Minari dataset."),
    set_: list[str] = typer.Option([], "--set", help="Task option: key=value (YAML value)."),
) -> None:
    """Collect TASK's reference data from its scripted behaviours into a Minari dataset."""
    from pydantic import ValidationError

    from metatoken.data.collect import reference_data
    from metatoken.envs import make_task
    from metatoken.experiments.spec import apply_overrides

    options = apply_overrides({}, set_)
    try:
        t = make_task(task, options)
    except ValidationError as err:
        e = err.errors()[0]
        raise UserError(f"--set {'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    ds = reference_data(t, out)
    typer.echo(f"{len(ds)} episodes, {ds.total_steps} steps -> {out / t.key}")


@app.command("probe")
def probe_(
    task: str = typer.Argument(..., help="Task id (see `metatoken list`)."),
    set_: list[str] = typer.Option([], "--set", help="Task option: key=value (YAML value)."),
    episodes: int = typer.Option(512, "--episodes", help="Seeded episodes per behaviour."),
    seed: int = typer.Option(0, "--seed", help="Probe seed (every episode seed derives from it)."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Characterise TASK before training: noise, reference and exploiter behaviours, sparsity in bits."""
    import json

    from metatoken import probe as probing

    result = probing.probe(task, probing.task_options(set_), episodes, seed)
    typer.echo(json.dumps(result.to_json()) if json_ else probing.table(result))


def entrypoint(argv: list[str] | None = None) -> None:
    """Console entry (ARGV, default the process's): user errors become one line on stderr and exit code 2."""
    try:
        code = app(args=argv, prog_name="metatoken" if argv is not None else None, standalone_mode=False)
    except UserError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except click_errors.NoArgsIsHelpError as err:  # bare `metatoken` with no command: the help
        err.show()
        sys.exit(2)
    except click_errors.ClickException as err:  # bad options or values: one line like a UserError, not a box
        typer.echo(f"error: {' '.join(err.format_message().split())}", err=True)
        sys.exit(err.exit_code)
    except typer.Abort:  # Ctrl-C at a prompt
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
