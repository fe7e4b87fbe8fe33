"""Experiment specs: YAML validated by pydantic, with `--set key=value` overrides.

A spec names tasks (id + options), methods (id + hyperparameters, optional per-method
`budgets`), seeds, budgets and measurements. Unknown keys are rejected with their path; task
options and method hyperparameters are validated against the models their registries declare.

Sweeps: a task entry's `sweep: {option: [v1, v2]}` and a method entry's
`sweep: {hyperparameter: [...], budgets.<field>: [...]}` expand the entry into one entry per
combination (the cartesian product, in the order written), each labelled with its swept values
(`ppo-env_steps=10000`). Every swept value is validated with the entry's other settings; an error
names `methods[i].sweep.<key>[j]`. `parse_spec` returns the expanded spec.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from metatoken.errors import UserError

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.=\-]*$"  # "=" as in derived labels (beta=0.1)
DEFAULT_MEASUREMENTS = ["capability", "controllability", "spookiness"]
REFERENCE_NAME = "reference"  # the label of pi_ref's own run when the grid does not contain it
# Evaluation runs each commanded level's episodes as one batch of envs: more than this is a typo.
MAX_EVAL_EPISODES = 10_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Sweep = dict[str, Annotated[list[Any], Field(min_length=1)]]
BUDGET_PREFIX = "budgets."  # a method sweep key naming a per-method budget field
_SCIENTIFIC_RE = re.compile(r"^[0-9]+(\.[0-9]+)?[eE]\+?[0-9]+$")


class TaskSpec(_Strict):
    id: str
    name: str | None = Field(None, pattern=NAME_RE)  # label in results; derived when omitted
    options: dict[str, Any] = Field(default_factory=dict)
    sweep: Sweep = Field(default_factory=dict)  # option -> values; expanded by parse_spec


class MethodSpec(_Strict):
    id: str
    name: str | None = Field(None, pattern=NAME_RE)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    budgets: dict[str, Any] = Field(default_factory=dict)  # overrides the spec's budgets for this method
    sweep: Sweep = Field(default_factory=dict)  # hyperparameter or budgets.<field> -> values


def _whole_number(value: Any) -> Any:
    """1e4 written in YAML (a float, or the string "1e4" YAML 1.1 reads) -> 10000; anything else as is."""
    if isinstance(value, str) and _SCIENTIFIC_RE.match(value):
        value = float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Budgets(_Strict):
    # Strict: `true` or `1.5` is a mistake, not 1 step; a whole number written as 1e4 is fine.
    env_steps: StrictInt = Field(0, ge=0)
    gradient_steps: StrictInt = Field(1000, ge=1)
    eval_episodes: StrictInt = Field(20, ge=1)

    @field_validator("env_steps", "gradient_steps", mode="before")
    @classmethod
    def _scientific(cls, value: Any) -> Any:
        return _whole_number(value)

    @field_validator("eval_episodes", mode="before")
    @classmethod
    def _cap(cls, value: Any) -> Any:
        try:
            too_many = not isinstance(value, bool) and float(value) > MAX_EVAL_EPISODES
        except (TypeError, ValueError):
            return value  # not a number: the strict int check says so
        if too_many:
            raise ValueError(f"at most {MAX_EVAL_EPISODES} evaluation episodes per commanded level, got {value}")
        return value


class ExperimentSpec(_Strict):
    name: str = Field(pattern=NAME_RE)
    tasks: list[TaskSpec] = Field(min_length=1)
    methods: list[MethodSpec] = Field(min_length=1)
    seeds: list[Annotated[StrictInt, Field(ge=0)]] = Field(min_length=1)
    budgets: Budgets = Field(default_factory=Budgets)
    measurements: list[str] = Field(default_factory=lambda: list(DEFAULT_MEASUREMENTS))
    # pi_ref, the policy the ledger's KL is measured against: a method entry trained at seed 0
    # (default: the spec's first `bc` entry, else `bc` with its default hyperparameters).
    reference: MethodSpec | None = None
    # beta of the exact target E[sum r] - beta KL(pi || pi_ref) that runs on tabular tasks are
    # compared with (exact/*); default: the first kl-finetune entry's beta, else 0.1.
    beta: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _labels(self) -> ExperimentSpec:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds must be distinct")
        return self


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=\-]", "_", label)


def _derive_names(entries: list, field: str) -> None:
    """Label each unswept-form entry: its id, or id plus its settings when the id repeats."""
    counts = Counter(e.id for e in entries)
    for e in entries:
        if e.name is None:
            settings = getattr(e, field)
            e.name = _safe(e.id if counts[e.id] == 1 else e.id + "-" + "-".join(
                f"{k}={settings[k]}" for k in sorted(settings)))


def _expand_entries(entries: list, field: str) -> list:
    """One entry per combination of each entry's swept values, its label extended by them."""
    out = []
    for e in entries:
        keys = list(e.sweep)
        for combo in itertools.product(*(e.sweep[k] for k in keys)):
            settings = dict(getattr(e, field))
            update: dict[str, Any] = {field: settings, "sweep": {}}
            if isinstance(e, MethodSpec):
                update["budgets"] = dict(e.budgets)
            for key, value in zip(keys, combo):
                if key.startswith(BUDGET_PREFIX):
                    update["budgets"][key[len(BUDGET_PREFIX):]] = _whole_number(value)
                else:
                    settings[key] = value
            suffix = "-".join(f"{k.removeprefix(BUDGET_PREFIX)}={_whole_number(v)}" for k, v in zip(keys, combo))
            update["name"] = _safe(e.name + ("-" + suffix if suffix else ""))
            out.append(e.model_copy(update=update))
    seen = Counter(e.name for e in out)
    dup = [n for n, c in seen.items() if c > 1]
    if dup:
        raise UserError(f"duplicate name {dup[0]!r}: give each entry a distinct `name`")
    return out


def expand_sweeps(spec: ExperimentSpec) -> ExperimentSpec:
    """The spec with every sweep expanded into labelled entries (no entry keeps a `sweep`)."""
    _derive_names(spec.tasks, "options")
    _derive_names(spec.methods, "hyperparameters")
    tasks = _expand_entries(spec.tasks, "options")
    methods = _expand_entries(spec.methods, "hyperparameters")
    if any(m.name == REFERENCE_NAME for m in methods):
        raise UserError(f"method name {REFERENCE_NAME!r} is reserved for pi_ref's run")
    return spec.model_copy(update={"tasks": tasks, "methods": methods})


def method_budgets(spec: ExperimentSpec, method: MethodSpec) -> dict[str, int]:
    """The budgets a method entry runs with: the spec's, overridden by the entry's own `budgets`."""
    return Budgets.model_validate({**spec.budgets.model_dump(), **method.budgets}).model_dump()


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _first_error(err: ValidationError, prefix: str = "") -> str:
    e = err.errors()[0]
    where = _loc(tuple(e["loc"]))
    if prefix:
        where = prefix + ("" if where == "(top level)" else "." + where)
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"{where}: {msg}"


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `key.path=value` overrides (values parsed as YAML; list items by index)."""
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise UserError(f"--set {key}: value {raw!r} is not valid YAML ({err.problem})") from None
        parts = key.split(".")
        if not key or any(not p for p in parts):
            raise UserError(f"--set {item!r}: empty key")
        node: Any = data
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            where = ".".join(parts[: i + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise UserError(f"--set {key}: {where!r} is not an index of a {len(node)}-item list")
                part = int(part)
            elif not isinstance(node, dict):
                raise UserError(f"--set {key}: {'.'.join(parts[:i])!r} is not a mapping or list")
            if last:
                node[part] = value
            else:
                if isinstance(node, dict) and part not in node:
                    node[part] = {}
                node = node[part]
    return data


def _check_entries(source: str, field: str, kind: str, entries: list, registry, settings: str,
                   model_of, budgets: Budgets | None = None) -> None:
    """Each entry's id is registered and its settings, per-method budgets and every swept value
    validate against the models they belong to."""
    for i, entry in enumerate(entries):
        where = field if field == "reference" else f"{field}[{i}]"  # the one entry that is not a list
        if entry.id not in registry:
            raise UserError(f"{source}: {where}.id: {kind} {entry.id!r} unknown "
                            f"(known: {', '.join(e.id for e in registry)})")
        model = model_of(registry.get(entry.id))
        _validate(source, model, getattr(entry, settings), f"{where}.{settings}")
        own = getattr(entry, "budgets", None)
        if budgets is not None and own:
            _validate(source, Budgets, {**budgets.model_dump(), **own}, f"{where}.budgets")
        for key, values in entry.sweep.items():
            for j, value in enumerate(values):
                here = f"{where}.sweep.{key}[{j}]"
                if key.startswith(BUDGET_PREFIX) and budgets is not None:
                    name = key[len(BUDGET_PREFIX):]
                    if name not in Budgets.model_fields:
                        raise UserError(f"{source}: {where}.sweep.{key}: unknown budget "
                                        f"(known: {', '.join(Budgets.model_fields)})")
                    _validate(source, Budgets, {**budgets.model_dump(), **own, name: value}, here, leaf=True)
                else:
                    _validate(source, model, {**getattr(entry, settings), key: value}, here, leaf=True)


def _validate(source: str, model, data: dict, where: str, leaf: bool = False) -> None:
    """Validate data against model; a failure raises a one-line UserError at `where` (at its field unless leaf)."""
    try:
        model.model_validate(data)
    except ValidationError as err:
        if leaf:
            e = err.errors()[0]
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            raise UserError(f"{source}: {where}: {msg}") from None
        raise UserError(f"{source}: {_first_error(err, where)}") from None


def parse_spec(data: Any, source: str = "spec") -> ExperimentSpec:
    """Validate a spec mapping, including task options, method hyperparameters and measurement ids."""
    from metatoken.envs.task import TASKS
    from metatoken.evaluate.measure import MEASUREMENTS
    from metatoken.methods.base import METHODS

    if not isinstance(data, dict):
        raise UserError(f"{source}: the spec must be a mapping of fields")
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as err:
        raise UserError(f"{source}: {_first_error(err)}") from None
    from metatoken.text.integration import check_text_spec

    if check_text_spec(spec, source):  # text-world tasks with text recipes: validated by the text lab
        try:
            return expand_sweeps(spec)  # labels every entry, as for control specs
        except UserError as err:
            raise UserError(f"{source}: {err}") from None
    _check_entries(source, "tasks", "task", spec.tasks, TASKS, "options", lambda d: d.options)
    _check_entries(source, "methods", "method", spec.methods, METHODS, "hyperparameters", lambda d: d.params,
                   spec.budgets)
    if spec.reference is not None:
        if spec.reference.sweep:
            raise UserError(f"{source}: reference.sweep: pi_ref is one run and cannot be swept")
        _check_entries(source, "reference", "method", [spec.reference], METHODS, "hyperparameters",
                       lambda d: d.params, spec.budgets)
    for i, mid in enumerate(spec.measurements):
        if mid not in MEASUREMENTS:
            raise UserError(f"{source}: measurements[{i}]: measurement {mid!r} unknown "
                            f"(known: {', '.join(e.id for e in MEASUREMENTS)})")
    try:
        return expand_sweeps(spec)
    except UserError as err:
        raise UserError(f"{source}: {err}") from None


def load_spec(path: Path | str, overrides: list[str] | None = None) -> ExperimentSpec:
    """Read a YAML spec file, apply overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such spec file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} invalid YAML ({getattr(err, 'problem', err)})") from None
    if isinstance(data, dict):
        data = apply_overrides(data, overrides or [])
    return parse_spec(data, str(path))
