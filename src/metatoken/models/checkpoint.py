"""Checkpoints: `model.safetensors` plus `config.json`; loading never unpickles.

config.json holds the model kind and config, the fitted condition and a format version;
normalisation statistics are buffers, so they travel in the safetensors file.
Training checkpoints (the state of an unfinished training, for resuming a killed run) are
below: `checkpointing(directory)` is the seam through which a run tells `train_predictor`
where to write them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from metatoken.errors import UserError
from metatoken.models.conditions import Condition, condition_from_json
from metatoken.models.mlp import MLPConfig, MLPPredictor
from metatoken.models.transformer import DecisionTransformer, TransformerConfig

FORMAT = 1
MODELS = {"transformer": (TransformerConfig, DecisionTransformer), "mlp": (MLPConfig, MLPPredictor)}
WEIGHTS, CONFIG = "model.safetensors", "config.json"


def save(directory: Path, model: nn.Module, condition: Condition) -> None:
    """Write weights and config; each file is written to a temporary name, then renamed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "model": model.kind, "config": model.cfg.to_json(),
              "condition": condition.to_json()}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(directory / (WEIGHTS + ".tmp")))
    (directory / (CONFIG + ".tmp")).write_text(json.dumps(config, indent=2))
    os.replace(directory / (WEIGHTS + ".tmp"), directory / WEIGHTS)
    os.replace(directory / (CONFIG + ".tmp"), directory / CONFIG)


def load_model(directory: Path) -> tuple[nn.Module, Condition]:
    """Rebuild (model, condition) from a checkpoint directory."""
    directory = Path(directory)
    try:
        config = json.loads((directory / CONFIG).read_text())
        if config.get("format") != FORMAT:
            raise UserError(f"{directory / CONFIG}: unsupported checkpoint format {config.get('format')!r}")
        cfg_cls, model_cls = MODELS[config["model"]]
        model = model_cls(cfg_cls(**config["config"]))
        weights = load_file(str(directory / WEIGHTS))
        mismatch = _mismatch(model.state_dict(), weights)
        if mismatch:
            raise UserError(f"cannot load checkpoint {directory}: {CONFIG} does not match {WEIGHTS} ({mismatch})")
        model.load_state_dict(weights)
        return model.eval(), condition_from_json(config["condition"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
        # torch's and safetensors' messages can span many lines: the first names the problem
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"cannot load checkpoint {directory}: {first}") from exc


def _mismatch(expected: dict, saved: dict) -> str:
    """The first difference between the tensors a config builds and those saved, as words; '' if none."""
    missing = sorted(set(expected) - set(saved))
    if missing:
        return f"tensor {missing[0]!r} is missing from the weights"
    unexpected = sorted(set(saved) - set(expected))
    if unexpected:
        return f"the weights hold {unexpected[0]!r}, which the config does not build"
    for name in sorted(expected):
        want, got = tuple(expected[name].shape), tuple(saved[name].shape)
        if want != got:
            return f"tensor {name!r} has shape {got}, the config builds {want}"
    return ""


def load_policy(directory: Path):
    """A PredictorPolicy from a checkpoint directory."""
    from metatoken.models.policy import PredictorPolicy

    return PredictorPolicy(*load_model(directory))


# --- training checkpoints: the state of one unfinished training, so a killed run can resume ---
#
# A training's slot directory holds at most one `step-NNNNNNNNN/` (state.safetensors: model,
# optimiser and RNG tensors; state.json: step, config, schedule, sampler generator, counters).
# Each is built under a dot name and renamed into place, so a kill leaves the previous one intact.

TRAIN_FORMAT = 1
STATE, STATE_CONFIG, _STEP_PREFIX = "state.safetensors", "state.json", "step-"
_PLAN: ContextVar[CheckpointPlan | None] = ContextVar("metatoken_checkpoint_plan", default=None)


@dataclass
class CheckpointPlan:
    """Where the trainings of one run checkpoint; each `train_predictor` call takes the next slot."""

    directory: Path
    every: int | None = None  # gradient steps between checkpoints; None: TrainConfig.checkpoint_every
    trainings: int = 0  # slots handed out so far (a recipe may train more than once, always in the same order)

    def next_slot(self) -> Path:
        """The directory of the next training in this run (train-0, train-1, ...)."""
        slot = Path(self.directory) / f"train-{self.trainings}"
        self.trainings += 1
        return slot


@contextmanager
def checkpointing(directory: Path, every: int | None = None) -> Iterator[CheckpointPlan]:
    """Within this block, every `train_predictor` call checkpoints under `directory` and resumes from it."""
    token = _PLAN.set(CheckpointPlan(Path(directory), every))
    try:
        yield _PLAN.get()
    finally:
        _PLAN.reset(token)


def active_plan() -> CheckpointPlan | None:
    """The checkpoint plan of the enclosing `checkpointing` block, if any."""
    return _PLAN.get()


def save_training_state(slot: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write one training state atomically and drop the older ones; returns its directory."""
    slot = Path(slot)
    slot.mkdir(parents=True, exist_ok=True)
    name = f"{_STEP_PREFIX}{step:09d}"
    tmp = slot / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    # clones: a training's weights may be views of one flat buffer (models/flat.py), which safetensors refuses
    save_file({k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in tensors.items()},
              str(tmp / STATE))
    (tmp / STATE_CONFIG).write_text(json.dumps({"format": TRAIN_FORMAT, "step": step, **meta}))
    final = slot / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in slot.glob(f"{_STEP_PREFIX}*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_training_state(slot: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(tensors, meta) of the newest complete state in `slot`, or None when there is none."""
    done = sorted(Path(slot).glob(f"{_STEP_PREFIX}*")) if Path(slot).is_dir() else []
    if not done:
        return None
    path = done[-1]
    try:
        meta = json.loads((path / STATE_CONFIG).read_text())
        if meta.get("format") != TRAIN_FORMAT:
            raise UserError(f"{path / STATE_CONFIG}: unsupported training checkpoint format {meta.get('format')!r}")
        return load_file(str(path / STATE)), meta
    except (OSError, ValueError, SafetensorError) as exc:
        raise UserError(f"cannot load training checkpoint {path}: {exc}") from exc


# --- declared state: nested dicts/lists of JSON values and tensors, split between the two files ---

_TENSOR, _ARRAY = "$tensor", "$array"  # JSON placeholders {"$tensor": name} / {"$array": name} for arrays


def split_tensors(state: Any, prefix: str) -> tuple[Any, dict[str, torch.Tensor]]:
    """(JSON-able copy of `state` with each tensor or numpy array replaced by a named placeholder, {name: tensor})."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach()
            return {_TENSOR: path}
        if isinstance(value, np.ndarray):  # numeric arrays only (an object array has no safetensors dtype)
            tensors[path] = torch.from_numpy(np.ascontiguousarray(value).reshape(value.shape))  # 0-d stays 0-d
            return {_ARRAY: path}
        if isinstance(value, dict):
            if _TENSOR in value or _ARRAY in value:
                raise ValueError(f"{path}: the keys {_TENSOR!r} and {_ARRAY!r} are reserved for placeholders")
            return {str(k): walk(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(value)]
        return value

    return walk(state, prefix), tensors


def join_tensors(state: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Undo `split_tensors`: put each placeholder's tensor or array back (dict keys stay strings)."""
    if isinstance(state, dict):
        if len(state) == 1 and (_TENSOR in state or _ARRAY in state):
            name = state.get(_TENSOR, state.get(_ARRAY))
            if name not in tensors:
                raise UserError(f"training checkpoint: tensor {name!r} is missing from {STATE}")
            return tensors[name] if _TENSOR in state else tensors[name].numpy()
        return {k: join_tensors(v, tensors) for k, v in state.items()}
    if isinstance(state, list):
        return [join_tensors(v, tensors) for v in state]
    return state


def optimizer_state(opt: torch.optim.Optimizer) -> dict[str, Any]:
    """An optimiser's state dict in a form `split_tensors` can store (parameter ids as strings)."""
    sd = opt.state_dict()
    return {"state": {str(pid): dict(entry) for pid, entry in sd["state"].items()}, "param_groups": sd["param_groups"]}


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Restore what `optimizer_state` captured (after a JSON round trip: ids back to ints, tuples from lists)."""
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in state["param_groups"]]
    try:
        opt.load_state_dict({"state": {int(pid): entry for pid, entry in state["state"].items()},
                             "param_groups": groups})
    except ValueError as e:  # e.g. per-tensor Adam state from before the flat buffers (models/flat.py)
        raise UserError(f"training checkpoint: its optimiser state does not fit this optimiser ({e})") from None


def config_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> str:
    """The first field where a checkpoint's config differs from the current one, as words; '' if none."""
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            return f"{key} is {saved.get(key)!r} there, {current.get(key)!r} here"
    return ""
