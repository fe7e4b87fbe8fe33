"""The KV-cached step equals the uncached K-window forward, including after the window rolls."""

import numpy as np
import pytest
import torch

from metatoken.models.conditions import ReturnToGo
from metatoken.models.policy import PredictorPolicy
from metatoken.models.transformer import DecisionTransformer, TransformerConfig


def _model(head: str, act_dim: int, layers: int = 3, heads: int = 2, K: int = 5) -> DecisionTransformer:
    torch.manual_seed(1)
    cfg = TransformerConfig(4, act_dim, head, cond_dim=2, d_model=32, n_layers=layers, n_heads=heads,
                            context=K, max_timestep=64, dropout=0.0)
    model = DecisionTransformer(cfg).eval()
    with torch.no_grad():  # larger weights than the init so differences would show
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("head,act_dim", [("tanh", 2), ("gaussian", 2), ("categorical", 3)])
def test_cached_step_equals_window_forward(head, act_dim):
    model, B, T, K = _model(head, act_dim), 3, 17, 5  # T > 3K: the ring buffer wraps three times
    g = torch.Generator().manual_seed(0)
    obs, cond = torch.randn(B, T, 4, generator=g), torch.randn(B, T, 2, generator=g)
    prev = (torch.randint(0, act_dim, (B, T), generator=g) if head == "categorical"
            else torch.randn(B, T, act_dim, generator=g))
    ts = torch.arange(T).repeat(B, 1)
    cache, worst = model.init_cache(B), 0.0
    with torch.no_grad():
        for t in range(T):
            got = model.step(cache, obs[:, t], prev[:, t], cond[:, t], ts[:, t])  # (B, P)
            lo = max(0, t - K + 1)
            want = model(obs[:, lo:t + 1], prev[:, lo:t + 1], cond[:, lo:t + 1], ts[:, lo:t + 1])[:, -1]
            worst = max(worst, (got - want).abs().max().item())
    assert worst < 1e-5



def test_step_with_envs_at_different_timesteps():
    """Envs out of lockstep (one restarts) still equal their own window forward.

    Steps 0-5 run in lockstep (one shared ring slot, masked until the window fills), env 2
    restarts at step 6 (each env its own slot, its stale slots masked), and from step 10 on
    every env has filled its K slots (no mask) while the slots still differ.
    """
    model, B, T, K = _model("tanh", 2), 3, 14, 5
    g = torch.Generator().manual_seed(2)
    obs, cond, prev = (torch.randn(B, T, n, generator=g) for n in (4, 2, 2))
    start = torch.tensor([0, 0, 6])  # the step at which each env's current episode began
    cache, worst = model.init_cache(B), 0.0
    with torch.no_grad():
        for t in range(T):
            begun = torch.where(start <= t, start, 0)  # (B,) env 2 runs its first episode until step 6
            ts = t - begun  # (B,)
            got = model.step(cache, obs[:, t], prev[:, t], cond[:, t], ts)  # (B, P)
            for b in range(B):
                lo = max(int(begun[b]), t - K + 1)
                want = model(obs[b:b + 1, lo:t + 1], prev[b:b + 1, lo:t + 1], cond[b:b + 1, lo:t + 1],
                             torch.arange(lo, t + 1)[None] - begun[b])[0, -1]
                worst = max(worst, (got[b] - want).abs().max().item())
    assert worst < 1e-5

def test_policy_matches_full_window_and_restarts_finished_envs():
    """Policy distributions equal the window forward; an env that finishes starts afresh."""
    model = _model("categorical", 3, K=4)
    model.embed_cond = torch.nn.Linear(1, 32)  # one-dimensional return-to-go condition
    model.cfg.cond_dim = 1
    cond = ReturnToGo(scale=10.0)
    policy = PredictorPolicy(model, cond)
    B, T = 2, 11
    policy.reset(B, target=np.array([5.0, 8.0]), seed=3)
    rng = np.random.default_rng(0)
    hist = {i: {"obs": [], "act": [], "cond": [], "t": []} for i in range(B)}
    rtg, t_env = np.array([5.0, 8.0]), np.zeros(B, int)
    for t in range(T):
        obs = rng.normal(size=(B, 4)).astype(np.float32)
        a = policy.act(obs)
        for i in range(B):
            h = hist[i]
            h["obs"].append(obs[i]); h["cond"].append([rtg[i] / 10.0]); h["t"].append(t_env[i])
            h["act"].append(int(a[i]))
            lo = max(0, len(h["obs"]) - 4)
            prevs = [0] + h["act"][:-1]
            with torch.no_grad():
                want = model(torch.tensor(np.array(h["obs"][lo:]))[None], torch.tensor(prevs[lo:])[None],
                             torch.tensor(h["cond"][lo:], dtype=torch.float32)[None],
                             torch.tensor(h["t"][lo:])[None])[0, -1]
            assert torch.allclose(policy.distribution().params[i], want, atol=1e-5), (t, i)
        reward = np.array([1.0, 0.5])
        done = np.array([t == 5, False])  # env 0 finishes after 6 steps
        policy.observe(reward, done)
        rtg = rtg - reward
        t_env += 1
        if done[0]:
            rtg[0], t_env[0] = 5.0, 0
            hist[0] = {"obs": [], "act": [], "cond": [], "t": []}


def test_batched_and_single_env_sampling_agree():
    """Env i of a batch takes the same sampled actions as a one-env policy seeded seed + i."""
    model = _model("categorical", 3, K=4)
    obs = np.random.default_rng(0).uniform(size=(70, 3, 4)).astype(np.float32)
    batched = PredictorPolicy(model, ReturnToGo(1.0))
    model.embed_cond, model.cfg.cond_dim = torch.nn.Linear(1, 32), 1
    batched.reset(3, target=np.zeros(3), seed=10)
    acts = np.stack([batched.act(o) for o in obs])  # (T, B)
    for i in range(3):
        single = PredictorPolicy(model, ReturnToGo(1.0))
        single.reset(1, target=np.zeros(1), seed=10 + i)
        assert np.array_equal(np.concatenate([single.act(o[i:i + 1]) for o in obs]), acts[:, i])
    assert len(np.unique(acts)) > 1  # sampling, not argmax


def test_step_on_an_empty_batch():
    """A batch of no envs steps to no distributions (the lockstep check must not reduce over nothing)."""
    model = _model("tanh", 2)
    with torch.no_grad():
        out = model.step(model.init_cache(0), torch.zeros(0, 4), torch.zeros(0, 2), torch.zeros(0, 2),
                         torch.zeros(0, dtype=torch.long))
    assert out.shape == (0, 4)
