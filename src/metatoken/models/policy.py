"""The batched, KV-cached rollout Policy for a trained predictor.

`act` serves B environments with one new token each: the model's `step` writes the token's
keys and values into each env's rolling K-slot cache and attends over it, which equals
recomputing the env's last K-step window. Each env has its own condition (from its target)
and its own torch.Generator (seed + env index); noise is drawn per env in chunks, so a
batched rollout and one-env-at-a-time rollouts with matching seeds take the same actions.

It is a `ScoredPolicy`: `log_prob` and `distribution` describe the last act, and
`teacher_force` advances the cache along an action another policy chose. `last_inputs`
gives the exact model inputs of the last act, which online policy-gradient methods replay
with gradients.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from metatoken.models.conditions import Condition
from metatoken.policy import ActionDistribution, Seeds, env_seeds

NOISE_CHUNK = 64  # steps of noise drawn per env generator at a time
EPISODE_TOKENS = 8192  # tokens per forward when whole episodes are scored (score_episodes)


class StepInputs(NamedTuple):
    """What the model consumed at one step, per env (enough to recompute the step with gradients)."""

    obs: torch.Tensor  # (B, O)
    prev_action: torch.Tensor  # (B, A) float or (B,) long
    cond: torch.Tensor  # (B, Dc)
    timestep: torch.Tensor  # (B,) long


class PredictorPolicy:
    """A trained predictor acting for B envs at once; sampling by default."""

    def __init__(self, model: nn.Module, condition: Condition):
        self.model = model.eval()
        self.condition = condition
        self.conditioned = condition.dim > 0
        self.reset(1, target=np.zeros(1) if self.conditioned else None)

    def reset(self, num_envs: int, *, target=None, seed: Seeds = 0, deterministic: bool = False) -> None:
        """Start B episodes; `target` (B,) is the commanded return per env (conditioned only)."""
        if self.conditioned and target is None:
            raise ValueError("a conditioned policy needs a target (commanded return) per environment")
        B, head = num_envs, self.model.head
        self.device = next(self.model.parameters()).device  # generators and numpy stay on the CPU
        self.num_envs, self.deterministic = B, deterministic
        self._start = self.condition.start(target, B).astype(np.float32)  # (B, Dc)
        self.cond = self._start.copy()
        self.t = torch.zeros(B, dtype=torch.long, device=self.device)
        self.prev = torch.zeros((B,) if head.discrete else (B, head.act_dim), device=self.device,
                                dtype=torch.long if head.discrete else torch.float32)
        self.cache = self.model.init_cache(B)
        self._gens = [torch.Generator().manual_seed(s) for s in env_seeds(seed, B)]
        self._params = torch.empty(0)  # (B, P) distribution of the last act
        self._inputs: StepInputs | None = None
        self._noise = torch.empty(0)
        self._noise_pos = NOISE_CHUNK

    def _next_noise(self) -> torch.Tensor:
        if self._noise_pos == NOISE_CHUNK:
            head = self.model.head
            noise = torch.stack([head.draw_noise(NOISE_CHUNK, g) for g in self._gens], 1)  # (chunk, B, n)
            self._noise = noise.to(self.device)
            self._noise_pos = 0
        self._noise_pos += 1
        return self._noise[self._noise_pos - 1]  # (B, n)

    def _take(self, obs: np.ndarray) -> StepInputs:
        """The model inputs for obs with the current history (kept for `last_inputs`)."""
        o = torch.as_tensor(np.asarray(obs), dtype=torch.float32).reshape(self.num_envs, -1).to(self.device)  # (B, O)
        cond = torch.from_numpy(self.cond).to(self.device)  # (B, Dc)
        self._inputs = StepInputs(o, self.prev, cond, self.t)
        return self._inputs

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions (B, *action_shape) for observations (B, *obs_shape)."""
        noise = None if self.deterministic else self._next_noise()  # (B, n)
        self._params, self.prev = self.model.act(self.cache, *self._take(obs), noise)  # (B, P), action
        return self.prev.cpu().numpy()

    @torch.inference_mode()
    def teacher_force(self, obs: np.ndarray, action: np.ndarray) -> None:
        """Advance on obs as if `action` had been taken: the next step sees it as the previous action."""
        self._params = self.model.step(self.cache, *self._take(obs))  # (B, P)
        self.prev = self._as_action(action)

    def _as_action(self, action: np.ndarray) -> torch.Tensor:
        a = torch.as_tensor(np.asarray(action), device=self.device)
        return a.long() if self.model.head.discrete else a.float().reshape(self.num_envs, -1)  # (B,) or (B, A)

    @torch.inference_mode()
    def log_prob(self, action: np.ndarray) -> np.ndarray:
        """log pi(action) under the distribution of the last act: (B,) float64."""
        return (-self.model.head.nll(self._params, self._as_action(action))).double().cpu().numpy()

    def distribution(self) -> ActionDistribution:
        """The head's distribution at the last act (its kind names the family)."""
        return self._distribution(self._params)

    def _distribution(self, params: torch.Tensor) -> ActionDistribution:
        head = self.model.head
        if head.discrete:
            return ActionDistribution("categorical", params)
        return ActionDistribution(head.kind, params, head.loc, head.scale)

    @torch.inference_mode()
    def score_episodes(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                       target: np.ndarray | None = None) -> ActionDistribution:
        """The distribution at every step of E episodes another policy played, teacher-forced, in one pass per
        group of episodes (`forward_episodes`): T x E rows, step-major.

        obs (T, E, *obs_shape), actions (T, E, *action_shape), rewards (T, E). Step t sees obs t, action t-1
        as its previous action and the condition counted down by rewards 0..t-1, as `teacher_force` and
        `observe` would give it step by step. Steps after an episode's end are scored as if it went on
        (callers mask them). Nothing is sampled and the policy's own state is left as it was.
        """
        if self.conditioned and target is None:
            raise ValueError("a conditioned policy needs a target (commanded return) per episode")
        T, E = rewards.shape
        conds, c = [], self.condition.start(target, E).astype(np.float32)  # (E, Dc)
        for r in rewards:
            conds.append(c)
            c = self.condition.update(c.copy(), np.asarray(r, np.float32))
        dev = self.device
        o = torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=dev).reshape(T, E, -1)  # (T, E, O)
        a = torch.as_tensor(np.asarray(actions), device=dev)
        a = a.long() if self.model.head.discrete else a.float().reshape(T, E, -1)  # (T, E) or (T, E, A)
        prev = torch.cat([torch.zeros_like(a[:1]), a[:-1]])  # action t-1; step 0's is the start token
        cond = torch.as_tensor(np.stack(conds), device=dev)  # (T, E, Dc)
        steps = torch.arange(T, device=dev)[:, None].expand(T, E)  # (T, E)
        rows = max(1, EPISODE_TOKENS // T)  # episodes per forward: bounds the banded attention's memory
        params = [self.model.forward_episodes(*(x[:, lo:lo + rows].transpose(0, 1) for x in (o, prev, cond, steps)))
                  for lo in range(0, E, rows)]  # each (rows, T, P)
        return self._distribution(torch.cat(params).transpose(0, 1).reshape(T * E, -1))  # (T * E, P) step-major

    def last_inputs(self) -> StepInputs:
        """Copies of the model inputs of the last act (the policy updates its own in place)."""
        if self._inputs is None:
            raise RuntimeError("last_inputs() before the first act")
        return StepInputs(*(x.clone() for x in self._inputs))

    def observe(self, reward: np.ndarray, done: np.ndarray) -> None:
        """Count the condition down by the reward; envs that finished start a fresh episode."""
        self.cond = self.condition.update(self.cond, np.asarray(reward, np.float32))
        self.t += 1
        done = np.asarray(done, bool)
        if done.any():
            self.cond[done] = self._start[done]
            self.t[torch.from_numpy(done).to(self.device)] = 0

    def save(self, directory: Path) -> None:
        """Weights as safetensors plus a JSON config (see models.checkpoint)."""
        from metatoken.models.checkpoint import save

        save(Path(directory), self.model, self.condition)
