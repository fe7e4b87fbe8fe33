"""Checkpoints: `model.safetensors` plus `config.json`; loading never unpickles.

config.json holds the model kind and config, the fitted condition and a format version;
normalisation statistics are buffers, so they travel in the safetensors file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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
