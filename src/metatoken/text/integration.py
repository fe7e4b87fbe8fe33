"""The text lab inside `metatoken run`: its task id, its recipes in METHODS, spec checks and one run's body.

A spec whose tasks are `text-world` runs through the same runner, backends, run directories
and results.parquet as the control side, with three differences the experiment code asks
this module about: no reference data is collected (the world samples p0 itself), no pi_ref
run is scheduled (each text run pretrains pi_ref for its seed, cached in the experiment's
datasets/ folder, and measures KL to it exactly), and the run's body is `execute_text`.
Text recipes are registered in the METHODS registry under their `text-*` ids (so `metatoken
list` and spec validation see them); a spec cannot mix text and control tasks.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from metatoken.errors import UserError
from metatoken.methods.base import METHODS, Budget, MethodDef
from metatoken.text.experiment import TEXT_TASK, run_text, task_options
from metatoken.text.recipes import TEXT_METHODS

TARGET_FILE = "target.txt"  # in a text run's directory: the name of the recipe's own exact target


def is_text_task(task_id: str) -> bool:
    """True for the text lab's task id."""
    return task_id == TEXT_TASK


def is_text_method(method_id: str) -> bool:
    return method_id in TEXT_METHODS


def register_text_methods() -> None:
    """Add every text recipe to METHODS (idempotent), so specs select them by id."""
    for entry in TEXT_METHODS:
        if entry.id not in METHODS:
            METHODS.register(entry.id, MethodDef(entry.value.params, entry.value.build), f"(text) {entry.doc}")


def check_text_spec(spec, source: str) -> bool:
    """Validate a spec's text entries; True when it is a text spec. Mixing text and control raises UserError."""
    text = [is_text_task(t.id) for t in spec.tasks]
    if not any(text):
        for i, m in enumerate(spec.methods):
            if is_text_method(m.id):
                raise UserError(f"{source}: methods[{i}].id: {m.id!r} is a text recipe; it needs task {TEXT_TASK!r}")
        return False
    if not all(text):
        i = text.index(False)
        raise UserError(f"{source}: tasks[{i}].id: a text spec cannot mix {TEXT_TASK!r} with control tasks")
    for i, t in enumerate(spec.tasks):
        task_options(t.options, f"{source}: tasks[{i}].options")
    for i, m in enumerate(spec.methods):
        if not is_text_method(m.id):
            raise UserError(f"{source}: methods[{i}].id: {m.id!r} is not a text recipe "
                            f"(known: {', '.join(e.id for e in TEXT_METHODS)})")
        try:
            TEXT_METHODS.get(m.id).params.model_validate(m.hyperparameters)
        except ValidationError as err:
            e = err.errors()[0]
            field = ".".join(str(p) for p in e["loc"])
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            raise UserError(f"{source}: methods[{i}].hyperparameters.{field}: {msg}") from None
    if spec.reference is not None:
        raise UserError(f"{source}: reference: text runs measure KL to their own pretrained model; "
                        "`reference` does not apply")
    return True


def execute_text(run, run_dir, cache_dir: Path) -> dict[str, float]:
    """The body of one text run inside the experiment runner: writes policy/, ledger.json, target.txt."""
    import time

    start, cpu = time.perf_counter(), time.process_time()
    result = run_text(run.task_options, run.method_id, run.hyperparameters, run.seed, Budget(**run.budgets),
                      Path(cache_dir))
    result.metrics["text/run_wall_s"] = time.perf_counter() - start
    result.metrics["text/run_cpu_s"] = time.process_time() - cpu
    result.policy.save(run_dir.policy)
    ledger = {k: v for k, v in result.ledger.__dict__.items()}
    run_dir.ledger.write_text(json.dumps(ledger, indent=2, sort_keys=True, default=float))
    (run_dir.path / TARGET_FILE).write_text(result.target_name + "\n")
    return result.metrics


register_text_methods()
