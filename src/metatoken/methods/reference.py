"""pi_reference: the `bc` policy trained on a task's reference data, once per task variant.

The ledger's KL(pi || pi_ref) is measured against it. The runner trains it beside the
reference data (`<datasets>/<task key>/reference_policy_bc_<steps>/`, safetensors + JSON)
with the spec's `bc` hyperparameters (bc's defaults when the spec has no bc) and seed 0, so every run of the task compares with
the same policy.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from metatoken.data.dataset import Dataset
from metatoken.methods.base import Budget, NullLogger
from metatoken.methods.bc import BC, BCParams
from metatoken.models.checkpoint import CONFIG, load_policy

REFERENCE_SEED = 0


def reference_dir(data_dir: Path, task_key: str, gradient_steps: int,
                  hyperparameters: dict[str, Any] | None = None) -> Path:
    """Where pi_ref lives: keyed by the gradient budget and bc's hyperparameters."""
    digest = hashlib.sha1(json.dumps(hyperparameters or {}, sort_keys=True).encode()).hexdigest()[:8]
    return Path(data_dir) / task_key / f"reference_policy_bc_{gradient_steps}_{digest}"


def ensure_reference_policy(dataset: Dataset, data_dir: Path, task_key: str, gradient_steps: int,
                            hyperparameters: dict[str, Any] | None = None) -> Path:
    """Train and save the reference bc policy unless it is cached; returns its directory."""
    path = reference_dir(data_dir, task_key, gradient_steps, hyperparameters)
    if not (path / CONFIG).exists():
        params = BCParams.model_validate(hyperparameters or {})
        trained = BC(params).train(None, dataset, Budget(gradient_steps=gradient_steps), REFERENCE_SEED,
                                   NullLogger())
        trained.policy.save(path)
    return path


def load_reference_policy(data_dir: Path, task_key: str, gradient_steps: int,
                          hyperparameters: dict[str, Any] | None = None):
    """The cached reference policy, or None when the runner did not train one."""
    path = reference_dir(data_dir, task_key, gradient_steps, hyperparameters)
    return load_policy(path) if (path / CONFIG).exists() else None
