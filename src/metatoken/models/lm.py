"""A causal language model over a small vocabulary, built from the condition-token transformer's blocks.

Token layout (T tokens, one per position):

    x_t = E_tok(token_t) + E_pos(t)        predicts token_{t+1}

The first token is a start token or a condition metatoken. As in `DecisionTransformer`,
every layer's keys and values are projected from the normalised token embedding and
queries come from the residual stream; the blocks, their hook points
(`blocks.0.attn.hook_pattern`, `blocks.1.hook_resid_post`, ...) and the initialisation are
the same code, so interpretability tools apply to both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from metatoken.models.hooks import HookPoint, name_hook_points
from metatoken.models.transformer import Block, DecisionTransformer, TransformerConfig


@dataclass
class LMConfig:
    vocab: int  # token ids 0 .. vocab-1 (words, start token, condition tokens)
    context: int  # positions, the first (start / condition) token included
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    d_mlp: int = 0  # 0 means 4 * d_model
    dropout: float = 0.0

    def block_config(self) -> TransformerConfig:
        """The shared transformer config the blocks are built from."""
        return TransformerConfig(obs_dim=0, act_dim=self.vocab, head="categorical", d_model=self.d_model,
                                 n_layers=self.n_layers, n_heads=self.n_heads, context=self.context,
                                 d_mlp=self.d_mlp, dropout=self.dropout)

    def to_json(self) -> dict:
        return asdict(self)


class CausalLM(nn.Module):
    """Next-token logits for every position of token sequences (B, T) -> (B, T, vocab)."""

    kind = "causal-lm"

    def __init__(self, cfg: LMConfig):
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise ValueError("d_model must be divisible by n_heads")
        self.cfg = cfg
        bcfg = cfg.block_config()
        C, L = cfg.d_model, cfg.n_layers
        self.embed_tok = nn.Embedding(cfg.vocab, C)
        self.embed_pos = nn.Embedding(cfg.context, C)
        self.drop = nn.Dropout(cfg.dropout)
        self.ln_kv = nn.LayerNorm(C)
        self.kv = nn.Linear(C, L * 2 * C)  # all layers' keys and values in one matmul
        self.blocks = nn.ModuleList(Block(bcfg) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        self.unembed = nn.Linear(C, cfg.vocab)
        self.hook_tok_embed = HookPoint()  # (B, T, C)
        self.hook_pos_embed = HookPoint()  # (B, T, C)
        self.hook_embed = HookPoint()  # (B, T, C) the summed token
        self.apply(DecisionTransformer._init)
        name_hook_points(self)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) long -> logits (B, T, vocab); position t predicts token t + 1."""
        B, T = tokens.shape
        C, H = self.cfg.d_model, self.cfg.n_heads
        pos = torch.arange(T, device=tokens.device)
        x = self.hook_embed(self.hook_tok_embed(self.embed_tok(tokens)) + self.hook_pos_embed(self.embed_pos(pos)))
        x = self.drop(x)  # (B, T, C)
        kv = self.kv(self.ln_kv(x)).view(B, T, self.cfg.n_layers, 2, H, C // H)
        kv = kv.permute(2, 3, 0, 4, 1, 5).unbind(0)  # L x (2, B, H, T, D)
        h = x
        for block, (k, v) in zip(self.blocks, (layer.unbind(0) for layer in kv)):
            h = block(h, k, v)
        return self.unembed(self.ln_f(h))  # (B, T, vocab)

    def flops_per_token(self) -> float:
        """Forward multiply-adds x 2 per token at full context (training costs about 3x)."""
        c = self.cfg
        C, L, T, M = c.d_model, c.n_layers, c.context, c.d_mlp or 4 * c.d_model
        per_layer = 2 * (2 * C * C + 2 * C * M) + 2 * 2 * C * (T + 1) / 2
        return 2 * C * 2 * L * C + L * per_layer + 2 * C * c.vocab
