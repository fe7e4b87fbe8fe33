"""pi_reference: the `bc` policy trained on a task's reference data, once per task variant.

The ledger's KL(pi || pi_ref) is measured against it. The runner trains it beside the
reference data (`<datasets>/<task key>/reference_policy_bc_<steps>/`, safetensors + JSON)
with bc's default hyperparameters and seed 0, so every run of the task compares with
the same policy.
"""

from __future__ import annotations

from pathlib import Path

from metatoken.data.dataset import Dataset
from metatoken.methods.base import Budget, NullLogger
from metatoken.methods.bc import BC, BCParams
from metatoken.models.checkpoint import CONFIG, load_policy

REFERENCE_SEED = 0


def reference_dir(data_dir: Path, task_key: str, gradient_steps: int) -> Path:
    return Path(data_dir) / task_key / f"reference_policy_bc_{gradient_steps}"


def ensure_reference_policy(dataset: Dataset, data_dir: Path, task_key: str, gradient_steps: int) -> Path:
    """Train and save the reference bc policy unless it is cached; returns its directory."""
    path = reference_dir(data_dir, task_key, gradient_steps)
    if not (path / CONFIG).exists():
        trained = BC(BCParams()).train(None, dataset, Budget(gradient_steps=gradient_steps), REFERENCE_SEED,
                                       NullLogger())
        trained.policy.save(path)
    return path


def load_reference_policy(data_dir: Path, task_key: str, gradient_steps: int):
    """The cached reference policy, or None when the runner did not train one."""
    path = reference_dir(data_dir, task_key, gradient_steps)
    return load_policy(path) if (path / CONFIG).exists() else None
