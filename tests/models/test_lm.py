import torch

from metatoken.models.hooks import run_with_cache
from metatoken.models.lm import CausalLM, LMConfig
from metatoken.models.transformer import Block


def _model():
    torch.manual_seed(0)
    return CausalLM(LMConfig(vocab=9, context=6, d_model=16, n_layers=2, n_heads=2)).eval()


def test_logits_are_causal():
    model = _model()
    x = torch.randint(0, 9, (3, 6))
    y = x.clone()
    y[:, 4] = (y[:, 4] + 1) % 9  # change token 4: positions 0..3 must not move, 4 must
    a, b = model(x), model(y)
    assert a.shape == (3, 6, 9)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert (a[:, 4] - b[:, 4]).abs().max() > 1e-4


def test_shares_the_transformer_blocks_and_hook_names():
    model = _model()
    assert all(isinstance(b, Block) for b in model.blocks)
    _, cache = run_with_cache(model, torch.randint(0, 9, (2, 5)))
    assert cache["blocks.1.attn.hook_pattern"].shape == (2, 2, 5, 5)
    assert cache["hook_embed"].shape == (2, 5, 16)
    pattern = cache["blocks.0.attn.hook_pattern"][0, 0]
    assert torch.allclose(pattern.sum(-1), torch.ones(5)) and pattern.triu(1).abs().max() == 0
