"""KL to the reference policy: the ledger's "bits of selection", measured after training.

pi_ref is an ordinary run of the experiment (experiments/runs.py); this measurement loads
its saved policy from that run's directory and scores the trained policy against it with the
closed-form per-step KL, one ruler for every pair of policies in a spec, PPO's clipped Gaussian
included. The episodes are the run's own sampled evaluation episodes at the top data level (all
`eval_episodes` of them): run_one keeps them during the evaluation (`top_level_recorder`, handed
over as `RunContext.top_episodes`) and pi_ref is teacher-forced along them without an env
(`evaluate/kl.py: kl_along`). Without a recording the same episodes (same seeds) are played again
(`kl_per_step`), which gives the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from metatoken import seeds
from metatoken.data.dataset import Dataset
from metatoken.envs.task import Task
from metatoken.evaluate.evaluate import command_levels, first_top_episode
from metatoken.evaluate.kl import kl_along, kl_per_step
from metatoken.evaluate.measure import RunContext, measurement
from metatoken.evaluate.recorders import ScoredEpisodes
from metatoken.evaluate.rollout import Rollouts
from metatoken.policy import Policy, ScoredPolicy

# Run by every run, whatever the spec lists: the ledger's KL, and (on tabular tasks) the distance to the exact target.
LEDGER_MEASUREMENTS = ["kl-to-reference", "exact"]


def can_score(policy: Policy) -> bool:
    """Whether `policy` gives log-probabilities of its actions (scripted policies do not)."""
    return isinstance(policy, ScoredPolicy)


def top_level_recorder(policy: Policy, eval_episodes: int) -> ScoredEpisodes | None:
    """What `evaluate(..., recorders=[...])` must keep for KL to pi_ref: the episodes at the top data
    level (all `eval_episodes` of them); None when the policy cannot score its actions."""
    if not can_score(policy):
        return None
    first = first_top_episode(policy.conditioned, eval_episodes)
    return ScoredEpisodes(policy, range(first, first + eval_episodes))


def load_saved_policy(directory: Path) -> Policy:
    """A policy saved by a run (`SavablePolicy.save`): a predictor, an SB3 actor-critic or a d3rlpy policy."""
    from metatoken.models.checkpoint import CONFIG, load_policy

    config = json.loads((Path(directory) / CONFIG).read_text())
    if config.get("kind") == "sb3-actor-critic":
        from metatoken.methods.sb3_policy import load_sb3_policy

        return load_sb3_policy(directory)
    if str(config.get("kind", "")).startswith("d3rlpy-"):  # iql / cql (methods/offline_rl.py)
        from metatoken.methods.offline_rl import load_offline_rl_policy

        return load_offline_rl_policy(directory)
    return load_policy(directory)


def same_predictor(a: Policy, b: Policy) -> bool:
    """Whether two predictor policies are one policy: same model kind, config, condition and bit-equal weights."""
    from metatoken.models.policy import PredictorPolicy

    if not (isinstance(a, PredictorPolicy) and isinstance(b, PredictorPolicy)):
        return False
    if type(a.model) is not type(b.model) or a.model.cfg.to_json() != b.model.cfg.to_json():
        return False
    if a.condition.to_json() != b.condition.to_json():
        return False
    wa, wb = a.model.state_dict(), b.model.state_dict()
    return wa.keys() == wb.keys() and all(
        wa[k].device == wb[k].device and wa[k].dtype == wb[k].dtype and torch.equal(wa[k], wb[k]) for k in wa)


@measurement("kl-to-reference", needs_run=True)
def kl_to_reference(rollouts: Rollouts, task: Task, dataset: Dataset, run: RunContext) -> dict[str, float]:
    """ledger/kl_to_reference_per_step: mean over the states pi visits in its sampled evaluation episodes at
    the top data level (all eval_episodes) of the closed-form KL(pi(.|h_t) || pi_ref(.|h_t));
    ledger/kl_to_reference_nats: its sum over each episode, averaged (per episode, so it grows
    with episode length); NaN when pi_ref saved no policy or either policy cannot score its actions."""
    from metatoken.models.checkpoint import CONFIG

    nan = {"ledger/kl_to_reference_nats": float("nan"), "ledger/kl_to_reference_per_step": float("nan")}
    ref_dir = run.reference_policy_dir
    if ref_dir is None or not (Path(ref_dir) / CONFIG).is_file() or not can_score(run.policy):
        return nan
    reference = load_saved_policy(ref_dir)
    if not can_score(reference):
        return nan
    if same_predictor(run.policy, reference):
        # pi_ref scored against its own saved copy: both give the same distribution at every step, so
        # every closed-form step KL is exactly 0; scoring pi_ref along the episodes would only confirm it.
        return {"ledger/kl_to_reference_nats": 0.0, "ledger/kl_to_reference_per_step": 0.0}
    target = float(command_levels(dataset)[-1]) if run.policy.conditioned else None
    if run.top_episodes is not None:
        kl = kl_along(run.top_episodes, reference, target)
    else:  # the same episodes, played again: episode i takes env and policy seed seeds.evaluation(seed) + i
        kl = kl_per_step(task, run.policy, reference, run.eval_episodes, seeds.evaluation(run.seed), target)
    return {"ledger/kl_to_reference_nats": float(np.mean(kl.per_episode)),
            "ledger/kl_to_reference_per_step": kl.per_step}
