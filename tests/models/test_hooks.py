"""Hook points: every named hook is reachable, hooks never change outputs unless they mean to."""

import torch

from metatoken.models.hooks import hook_points, hooks, run_with_cache
from metatoken.models.mlp import MLPConfig, MLPPredictor
from metatoken.models.transformer import DecisionTransformer, TransformerConfig

LAYERS = 2
PER_LAYER = ["attn.hook_pattern", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_z",
             "hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out"]


def _inputs(B=2, T=6):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(B, T, 3, generator=g), torch.randn(B, T, 2, generator=g),
            torch.randn(B, T, 1, generator=g), torch.arange(T).repeat(B, 1))


def _model():
    torch.manual_seed(0)
    cfg = TransformerConfig(3, 2, "tanh", cond_dim=1, d_model=16, n_layers=LAYERS, n_heads=2, context=6, dropout=0.0)
    return DecisionTransformer(cfg).eval()


def test_run_with_cache_returns_every_named_hook_with_shapes():
    model, x = _model(), _inputs()
    out, cache = run_with_cache(model, *x)
    expected = {f"blocks.{i}.{n}" for i in range(LAYERS) for n in PER_LAYER} | {
        "hook_cond_embed", "hook_obs_embed", "hook_act_embed", "hook_time_embed", "hook_embed"}
    assert set(cache) == expected
    assert cache["blocks.1.attn.hook_pattern"].shape == (2, 2, 6, 6)  # (B, H, T, T)
    assert cache["blocks.0.attn.hook_q"].shape == (2, 2, 6, 8)  # (B, H, T, D)
    assert cache["hook_cond_embed"].shape == (2, 6, 16)
    pattern = cache["blocks.0.attn.hook_pattern"]
    assert torch.allclose(pattern.sum(-1), torch.ones(2, 2, 6))  # rows are distributions
    assert torch.all(pattern.triu(1) == 0)  # causal: no attention to later steps
    assert torch.allclose(out, model(*x), atol=1e-6)  # explicit softmax vs fused kernel
    assert not any(p.active for p in hook_points(model).values())  # hooks removed afterwards


def test_hooks_attached_or_not_outputs_identical():
    model, x = _model(), _inputs()
    plain = model(*x)
    identity = [(f"blocks.{i}.{n}", lambda a, hook: None) for i in range(LAYERS) for n in PER_LAYER
                if n not in ("attn.hook_pattern", "attn.hook_z")]
    with hooks(model, identity + [("hook_cond_embed", lambda a, hook: None)]):
        assert torch.equal(model(*x), plain)
    with hooks(model, [("blocks.0.attn.hook_pattern", lambda a, hook: None)]):  # explicit softmax path
        assert torch.allclose(model(*x), plain, atol=1e-6)


def test_patching_the_condition_embedding_equals_a_zero_condition():
    """The cond embedding's bias starts at zero, so zeroing hook_cond_embed = feeding cond 0."""
    model, (obs, prev, cond, ts) = _model(), _inputs()
    with hooks(model, [("hook_cond_embed", lambda a, hook: torch.zeros_like(a))]):
        patched = model(obs, prev, cond, ts)
    assert torch.allclose(patched, model(obs, prev, torch.zeros_like(cond), ts), atol=1e-6)
    assert not torch.allclose(patched, model(obs, prev, cond, ts), atol=1e-4)


def test_mlp_predictor_has_cond_hook():
    torch.manual_seed(0)
    model = MLPPredictor(MLPConfig(3, 2, "gaussian", cond_dim=1, hidden=8))
    _, cache = run_with_cache(model, *_inputs())
    assert set(cache) == {"hook_cond_embed", "hook_hidden"}
