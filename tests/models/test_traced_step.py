"""The traced cached step (models/traced.py) gives the eager step's outputs bit for bit, and steps
aside wherever a replay could be told apart: hooks, training mode, autograd."""

import copy

import pytest
import torch

from metatoken.models.transformer import DecisionTransformer, TransformerConfig


def _model(head: str, act_dim: int, K: int = 5) -> DecisionTransformer:
    torch.manual_seed(3)
    cfg = TransformerConfig(4, act_dim, head, cond_dim=2, d_model=32, n_layers=2, n_heads=2,
                            context=K, max_timestep=64)  # dropout 0.1: eval mode must switch it off in the trace too
    model = DecisionTransformer(cfg).eval()
    with torch.no_grad():  # larger weights than the init so differences would show
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    model.step_traces.warmup = 1
    return model


def _inputs(head: str, act_dim: int, B: int, T: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    obs, cond = torch.randn(T, B, 4, generator=g), torch.randn(T, B, 2, generator=g)
    prev = (torch.randint(0, act_dim, (T, B), generator=g) if head == "categorical"
            else torch.randn(T, B, act_dim, generator=g))
    return obs, prev, cond


def _timesteps(B: int, T: int) -> list[torch.Tensor]:
    """Lockstep from 0, env 1 restarts at step 12: every variant (masked or not, lockstep or not) occurs."""
    out = []
    for t in range(T):
        ts = torch.full((B,), t)
        if t >= 12:
            ts[1] = t - 12
        out.append(ts)
    return out


def _noop(activation, hook):
    return None


@pytest.mark.parametrize("head,act_dim", [("tanh", 2), ("categorical", 3)])
def test_traced_steps_equal_eager_steps_bit_for_bit(head, act_dim):
    model = _model(head, act_dim)
    eager = copy.deepcopy(model)  # same weights, no traces
    eager.blocks[0].hook_resid_post.add_hook(_noop)  # a hook: this twin always steps eagerly
    B, T = 3, 40
    obs, prev, cond = _inputs(head, act_dim, B, T)
    caches = model.init_cache(B), eager.init_cache(B)
    with torch.inference_mode():
        for t, ts in enumerate(_timesteps(B, T)):
            got = model.step(caches[0], obs[t], prev[t], cond[t], ts)  # (B, P)
            want = eager.step(caches[1], obs[t], prev[t], cond[t], ts)
            assert torch.equal(got, want), t
            assert torch.equal(caches[0].kv, caches[1].kv), t
    assert len(model.step_traces) == 4  # {masked, full} x {lockstep, not}
    assert len(eager.step_traces) == 0


@pytest.mark.parametrize("head,act_dim", [("tanh", 2), ("gaussian", 2), ("categorical", 3)])
@pytest.mark.parametrize("sampled", [True, False])
def test_traced_acts_equal_eager_acts_bit_for_bit(head, act_dim, sampled):
    """`act` (the step and the head's sampled or mode action in one call) replays bit for bit too."""
    model = _model(head, act_dim)
    eager = copy.deepcopy(model)
    eager.blocks[0].hook_resid_post.add_hook(_noop)
    B, T = 3, 40
    obs, prev, cond = _inputs(head, act_dim, B, T, seed=2)
    noise = torch.rand(T, B, model.head.noise_dim, generator=torch.Generator().manual_seed(5))  # (T, B, n)
    if head != "categorical":
        noise = 2 * noise - 1  # both signs, so the sampled action differs from the mode
    caches = model.init_cache(B), eager.init_cache(B)
    with torch.inference_mode():
        for t, ts in enumerate(_timesteps(B, T)):
            z = noise[t] if sampled else None
            got = model.act(caches[0], obs[t], prev[t], cond[t], ts, z)  # (params (B, P), action)
            want = eager.act(caches[1], obs[t], prev[t], cond[t], ts, z)
            assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), t
            assert torch.equal(want[1], eager.head.sample(want[0], z, not sampled)), t  # act is step + sample
    assert len(model.step_traces) == 4


def test_a_hook_attached_after_tracing_still_fires():
    model = _model("tanh", 2)
    B, T = 2, 12
    obs, prev, cond = _inputs("tanh", 2, B, T)
    cache, seen = model.init_cache(B), []
    with torch.inference_mode():
        for t in range(10):
            model.step(cache, obs[t], prev[t], cond[t], torch.full((B,), t))
        assert len(model.step_traces) == 2
        handle = model.blocks[1].hook_resid_post.add_hook(lambda x, hook: seen.append(x.shape))
        model.step(cache, obs[10], prev[10], cond[10], torch.full((B,), 10))
        handle.remove()
        model.step(cache, obs[11], prev[11], cond[11], torch.full((B,), 11))
    assert seen == [torch.Size([B, 32])]


def test_in_place_weight_updates_reach_the_trace_and_copies_do_not_share_it():
    model = _model("gaussian", 2)
    B, T = 2, 16
    obs, prev, cond = _inputs("gaussian", 2, B, T, seed=1)

    def run(m, steps):
        cache = m.init_cache(B)
        with torch.inference_mode():
            return torch.stack([m.step(cache, obs[t], prev[t], cond[t], torch.full((B,), t)) for t in steps])

    run(model, range(T))
    assert len(model.step_traces) == 2
    with torch.no_grad():  # as an optimizer step or load_state_dict would: in place
        model.head.proj.weight.mul_(1.5)
        model.obs_norm.mean.add_(0.2)
    twin = copy.deepcopy(model)
    assert len(twin.step_traces) == 0
    twin.blocks[0].hook_resid_pre.add_hook(_noop)  # eager
    assert torch.equal(run(model, range(T)), run(twin, range(T)))
    clone = copy.deepcopy(model)  # its own parameters: changing them must not move the original's traced steps
    with torch.no_grad():
        clone.head.proj.weight.zero_()
    run(clone, range(T))
    assert torch.equal(run(model, range(T)), run(twin, range(T)))


def test_training_mode_and_autograd_step_eagerly():
    model = _model("tanh", 2)
    B = 2
    obs, prev, cond = _inputs("tanh", 2, B, 8)
    cache = model.init_cache(B)
    for t in range(4):
        model.step(cache, obs[t], prev[t], cond[t], torch.full((B,), t))  # autograd on
    model.train()
    with torch.inference_mode():
        for t in range(4, 8):
            model.step(cache, obs[t], prev[t], cond[t], torch.full((B,), t))
    assert len(model.step_traces) == 0
    model.eval()
    with torch.inference_mode():
        for t in range(4, 8):
            model.step(cache, obs[t], prev[t], cond[t], torch.full((B,), t))
    assert len(model.step_traces) == 1
