"""`metatoken probe`: characterise a task before anyone trains on it.

Each behaviour (uniform random actions; clipped Gaussians sigma 0.5 and 1 on continuous
actions; every scripted reference behaviour; the best reference behaviour with N(0, 0.2^2)
action noise and the scripted exploiter where the task has them) runs `episodes` seeded
episodes through the batched rollout on the task's sparse variant, so "success" means the
sparse reward was obtained. Reported per behaviour: success rate and exploit rate (share of
episodes in which a planted exploit fired) with 95% Wilson intervals, mean steps to success
with a 95% normal interval, and the share of each implementation label. The task's
sparsity_bits is exact on GlitchGrids and otherwise estimated from the uniform behaviour.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gymnasium import spaces
from pydantic import ValidationError

from metatoken import seeds
from metatoken.envs import make_task
from metatoken.envs.noise import ClippedGaussian, UniformRandom
from metatoken.envs.sparsity import Bits, estimated, exact_sparsity, sparse_variant, wilson
from metatoken.envs.task import Task
from metatoken.errors import UserError
from metatoken.evaluate.rollout import Rollouts, rollout
from metatoken.policy import Policy

UNIFORM = "uniform"
GAUSSIAN_SIGMAS = (0.5, 1.0)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval (None where undefined, e.g. no success)."""

    value: float | None
    low: float | None
    high: float | None

    def to_json(self) -> dict[str, Any]:
        """`{"value", "ci": [low, high]}`, rounded."""
        r = lambda v: None if v is None else round(float(v), 6)
        return {"value": r(self.value), "ci": [r(self.low), r(self.high)]}


@dataclass(frozen=True)
class BehaviourProbe:
    """What one behaviour did over its episodes."""

    episodes: int
    success_rate: Estimate
    exploit_rate: Estimate
    steps_to_success: Estimate
    implementations: dict[str, float]  # label -> share of episodes (empty when the env has no audit)

    def to_json(self) -> dict[str, Any]:
        """The behaviour's entry in `metatoken probe --json`."""
        return {"episodes": self.episodes, "success_rate": self.success_rate.to_json(),
                "exploit_rate": self.exploit_rate.to_json(),
                "steps_to_success": self.steps_to_success.to_json(),
                "implementations": {k: round(v, 6) for k, v in self.implementations.items()}}


@dataclass(frozen=True)
class Probe:
    """A task's probe: its options, sparsity in bits and every behaviour's outcomes."""

    task: str
    options: dict[str, Any]
    sparsity: Bits
    behaviours: dict[str, BehaviourProbe]

    def to_json(self) -> dict[str, Any]:
        """The object `metatoken probe --json` prints."""
        bits = self.sparsity.to_json()
        return {"task": self.task, "options": self.options, "sparsity_bits": bits["bits"],
                "sparsity_bits_ci": bits["ci"],
                "behaviours": {name: b.to_json() for name, b in self.behaviours.items()}}


def behaviours(task: Task) -> list[tuple[str, Callable[[], Policy]]]:
    """The behaviours a probe runs on `task`, by name, in report order."""
    space = task.make_vec(1).single_action_space
    out: list[tuple[str, Callable[[], Policy]]] = [(UNIFORM, lambda: UniformRandom(space))]
    if isinstance(space, spaces.Box):
        out += [(f"gaussian-{s:g}", lambda s=s: ClippedGaussian(space, s)) for s in GAUSSIAN_SIGMAS]
    out += [(b.name, b.make) for b in task.behaviours]
    if "noisy_reference" in task.extra:
        out.append(task.extra["noisy_reference"])
    if "exploiter" in task.extra:
        out.append(("exploiter", task.extra["exploiter"]))
    return out


def _rate(hits: int, n: int) -> Estimate:
    low, high = wilson(hits, n)
    return Estimate(hits / n, low, high)


def summarise(r: Rollouts) -> BehaviourProbe:
    """Success, exploit, steps to success and implementation shares of one behaviour's rollouts."""
    n = len(r)
    success = r.returns > 0  # (E,) the sparse reward was obtained
    fired = sum(1 for names in r.exploits_fired if names)
    steps = r.lengths[success].astype(float)  # (k,)
    if len(steps) == 0:
        mean_steps = Estimate(None, None, None)
    else:
        half = 1.959964 * steps.std(ddof=1) / math.sqrt(len(steps)) if len(steps) > 1 else 0.0
        mean_steps = Estimate(float(steps.mean()), float(steps.mean() - half), float(steps.mean() + half))
    labels = Counter(r.implementations)
    labels.pop("", None)  # episodes of an env without an implementation audit
    shares = {label: count / n for label, count in sorted(labels.items(), key=lambda kv: -kv[1])}
    return BehaviourProbe(n, _rate(int(success.sum()), n), _rate(fired, n), mean_steps, shares)


def probe(task_id: str, options: dict[str, Any] | None = None, episodes: int = 512, seed: int = 0) -> Probe:
    """Run every behaviour of the task for `episodes` seeded episodes and estimate its sparsity."""
    if episodes < 1:
        raise UserError(f"--episodes: must be >= 1, got {episodes}")
    options = dict(options or {})
    try:
        task = sparse_variant(make_task(task_id, options))
    except ValidationError as err:
        e = err.errors()[0]
        raise UserError(f"--set {'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    except ValueError as err:
        raise UserError(f"--set: {err}") from None
    results = {name: summarise(rollout(task, make(), episodes, seed=seeds.probe(seed, i)))
               for i, (name, make) in enumerate(behaviours(task))}
    exact = exact_sparsity(task)
    if exact is not None:
        bits = exact.reward
    else:
        uniform = results[UNIFORM].success_rate
        bits = estimated(round(uniform.value * episodes), episodes)
    return Probe(task_id, options, bits, results)


def table(p: Probe) -> str:
    """The probe as a plain-text table, one line per behaviour."""
    def pct(e: Estimate) -> str:
        return f"{100 * e.value:5.1f}% [{100 * e.low:5.1f}, {100 * e.high:5.1f}]"

    def steps(e: Estimate) -> str:
        return "-" if e.value is None else f"{e.value:.0f} [{e.low:.0f}, {e.high:.0f}]"

    bits = p.sparsity.to_json()
    bound = "" if bits["ci"][1] is not None else " (lower bound: no uniform episode succeeded)"
    high = "inf" if bits["ci"][1] is None else f"{bits['ci'][1]:.2f}"
    head = (f"task {p.task} {p.options or ''}".rstrip() + "\n"
            f"sparsity_bits {bits['bits']:.2f} [{bits['ci'][0]:.2f}, {high}]{bound}\n")
    rows = [(f"{'behaviour':<22} {'episodes':>8}  {'success (95% CI)':<24} {'exploit (95% CI)':<24} "
             f"{'steps to success':<18} implementations")]
    for name, b in p.behaviours.items():
        shares = ", ".join(f"{k} {100 * v:.1f}%" for k, v in b.implementations.items()) or "-"
        rows.append(f"{name:<22} {b.episodes:>8}  {pct(b.success_rate):<24} {pct(b.exploit_rate):<24} "
                    f"{steps(b.steps_to_success):<18} {shares}")
    return head + "\n".join(rows)


def task_options(overrides: list[str]) -> dict[str, Any]:
    """Task options from `--set option=value` items (values parsed as YAML)."""
    from metatoken.experiments.spec import apply_overrides

    return apply_overrides({}, overrides)


__all__ = ["BehaviourProbe", "Estimate", "Probe", "behaviours", "probe", "summarise", "table", "task_options"]
