"""The condition-token transformer: one token per timestep, keys and values from the token embedding.

Token layout (K steps, K tokens; a decision transformer uses 3K):

    x_t = E_obs(s_t) + E_act(a_{t-1}) + E_cond(c_t) + E_time(t)      predicts a_t

`a_{-1}` is a learned start vector. The condition `c_t` (return-to-go, bucket, ...) has its
own embedding, read and patched at `hook_cond_embed` (B, T, C) before it joins the token.

Every layer's keys and values are projected from the (normalised) token embedding, not
from the residual stream; queries come from the residual stream. So a token's keys and
values never depend on where the K-window starts, and a rolling KV cache reproduces the
uncached K-window computation exactly, even after the window rolls. With standard
residual keys the two differ beyond K steps for more than one layer. For the same reason
a whole episode (T > K) is scored in one pass (`forward_episodes`): every query t attends
only keys t-K+1..t (a banded causal mask), which is what the cached step sees at step t.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from metatoken.models.heads import ActionHead, HeadKind, ObsNormalizer
from metatoken.models.hooks import HookPoint, name_hook_points
from metatoken.models.traced import StepTraces


@dataclass
class TransformerConfig:
    obs_dim: int
    act_dim: int  # action dimensions (continuous) or number of actions (categorical)
    head: HeadKind = "tanh"
    cond_dim: int = 0  # 0 = unconditioned (behaviour cloning)
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 1
    context: int = 20  # K steps in the window
    d_mlp: int = 0  # 0 means 4 * d_model
    max_timestep: int = 1024  # episode steps with their own embedding; later steps share the last
    dropout: float = 0.1

    @property
    def mlp_dim(self) -> int:
        return self.d_mlp or 4 * self.d_model

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class KVCache:
    """Rolling per-env cache of every layer's keys and values for the last K tokens."""

    kv: torch.Tensor  # (B, K, L * 2 * C): ring buffer, slot = timestep % K


class Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.hook_q = HookPoint()  # (B, H, T, D)
        self.hook_k = HookPoint()  # (B, H, T, D)
        self.hook_v = HookPoint()  # (B, H, T, D)
        self.hook_pattern = HookPoint()  # (B, H, T_query, T_key), after softmax
        self.hook_z = HookPoint()  # (B, H, T, D), pattern-weighted values

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2)  # (B, H, T, D)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Causal attention: x (B, T, C) queries; k, v (B, H, T, D) from the embedding."""
        B, T, C = x.shape
        q = self.hook_q(self._heads(self.q(x)))
        k, v = self.hook_k(k), self.hook_v(v)
        p = self.dropout if self.training else 0.0
        if self.hook_pattern.active or self.hook_z.active:
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, T)
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            pattern = self.hook_pattern(scores.masked_fill(~causal, float("-inf")).softmax(-1))
            z = F.dropout(pattern, p, self.training) @ v  # (B, H, T, D)
        else:  # fused kernel when nobody inspects the pattern
            z = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        z = self.hook_z(z)
        return self.out(z.transpose(1, 2).reshape(B, T, C))

    def banded(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int) -> torch.Tensor:
        """Causal attention over each query's last `window` keys: x (B, T, C) queries; k, v (B, H, T, D).

        Each query gathers its own `window` keys (left-padded before position 0, masked), so the cost
        grows as T x window rather than T x T; a hooked pattern is (B, H, T, window), oldest key first.
        """
        B, T, C = x.shape
        W = window
        q = self.hook_q(self._heads(self.q(x)))  # (B, H, T, D)
        k, v = self.hook_k(k), self.hook_v(v)
        kw = F.pad(k, (0, 0, W - 1, 0)).unfold(2, W, 1)  # (B, H, T, D, W): keys t-W+1..t of query t
        vw = F.pad(v, (0, 0, W - 1, 0)).unfold(2, W, 1)  # (B, H, T, D, W)
        scores = (q[..., None, :] @ kw).squeeze(-2) / math.sqrt(q.shape[-1])  # (B, H, T, W)
        before_start = torch.arange(T, device=x.device)[:, None] + torch.arange(W, device=x.device) < W - 1  # (T, W)
        pattern = self.hook_pattern(scores.masked_fill(before_start, float("-inf")).softmax(-1))
        z = self.hook_z((vw @ pattern[..., None]).squeeze(-1))  # (B, H, T, D)
        return self.out(z.transpose(1, 2).reshape(B, T, C))

    def step(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """One query per env: x (B, C), cached k, v (B, H, K, D), valid (B, K) slots (None: all filled).

        Keys sit in ring-buffer order (slot = timestep % K), so a hooked pattern (B, H, 1, K)
        is in slot order, not chronological order.
        """
        B, C = x.shape
        q = self.hook_q(self._heads(self.q(x)[:, None]))  # (B, H, 1, D)
        k, v = self.hook_k(k), self.hook_v(v)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, 1, K)
        if valid is not None:  # masking no slot is the identity, so a full cache skips it
            scores = scores.masked_fill(~valid[:, None, None], float("-inf"))
        pattern = self.hook_pattern(scores.softmax(-1))
        z = self.hook_z(pattern @ v)  # (B, H, 1, D)
        return self.out(z.reshape(B, C))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.mlp = nn.Sequential(
            # ReLU as in the reference decision transformer; erf-GELU costs ~5% more on CPU. In place:
            # it overwrites only the first linear's fresh output (autograd keeps ReLU's output, not its input).
            nn.Linear(cfg.d_model, cfg.mlp_dim), nn.ReLU(inplace=True), nn.Linear(cfg.mlp_dim, cfg.d_model)
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.hook_resid_pre = HookPoint()  # (B, T, C)
        self.hook_attn_out = HookPoint()  # (B, T, C)
        self.hook_resid_mid = HookPoint()  # (B, T, C)
        self.hook_mlp_out = HookPoint()  # (B, T, C)
        self.hook_resid_post = HookPoint()  # (B, T, C)

    def forward(self, h: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid=None, window: int = 0) -> torch.Tensor:
        """h (B, T, C), or (B, C) for a cached step with its filled slots `valid` (None: all filled);
        `window` > 0 (with h (B, T, C)): attend each position's last `window` keys."""
        h = self.hook_resid_pre(h)
        if h.dim() == 2:
            a = self.attn.step(self.ln1(h), k, v, valid)
        elif window:
            a = self.attn.banded(self.ln1(h), k, v, window)
        else:
            a = self.attn(self.ln1(h), k, v)
        h = self.hook_resid_mid(h + self.hook_attn_out(self._drop(a)))
        h = h + self.hook_mlp_out(self._drop(self.mlp(self.ln2(h))))
        return self.hook_resid_post(h)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        # Dropout is the identity in eval; skipping its module call matters in per-step rollouts.
        return self.drop(x) if self.training else x


class DecisionTransformer(nn.Module):
    """Causal transformer from (obs, previous action, condition, timestep) tokens to action distributions."""

    kind = "transformer"

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise ValueError("d_model must be divisible by n_heads")
        self.cfg = cfg
        C, L = cfg.d_model, cfg.n_layers
        discrete = cfg.head == "categorical"
        self.obs_norm = ObsNormalizer(cfg.obs_dim)
        self.embed_obs = nn.Linear(cfg.obs_dim, C)
        self.embed_act = nn.Embedding(cfg.act_dim, C) if discrete else nn.Linear(cfg.act_dim, C)
        self.act_start = nn.Parameter(torch.zeros(C))  # stands in for a_{-1}
        self.embed_cond = nn.Linear(cfg.cond_dim, C) if cfg.cond_dim else None
        self.embed_time = nn.Embedding(cfg.max_timestep, C)
        self.drop = nn.Dropout(cfg.dropout)
        self.ln_kv = nn.LayerNorm(C)
        self.kv = nn.Linear(C, L * 2 * C)  # all layers' keys and values in one matmul
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        self.head = ActionHead(C, cfg.act_dim, cfg.head)
        self.hook_obs_embed = HookPoint()  # (B, T, C)
        self.hook_act_embed = HookPoint()  # (B, T, C)
        self.hook_cond_embed = HookPoint()  # (B, T, C); zeros when unconditioned
        self.hook_time_embed = HookPoint()  # (B, T, C)
        self.hook_embed = HookPoint()  # (B, T, C) the summed token
        self.apply(self._init)
        name_hook_points(self)
        self.step_traces = StepTraces()  # traced replays of `step` (not a module: no weights of its own)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    @property
    def context(self) -> int:
        return self.cfg.context

    def embed(self, obs, prev_action, cond, timestep) -> torch.Tensor:
        """Token embeddings (..., C) from obs (..., O), prev action, cond (..., Dc), timestep (...)."""
        e_obs = self.hook_obs_embed(self.embed_obs(self.obs_norm(obs)))
        first = (timestep == 0).unsqueeze(-1)  # (..., 1) no previous action yet
        if self.cfg.head != "categorical":  # continuous actions enter in head units
            prev_action = (prev_action - self.head.loc) / self.head.scale
        e_act = self.hook_act_embed(torch.where(first, self.act_start, self.embed_act(prev_action)))
        e_cond = self.embed_cond(cond) if self.embed_cond is not None else torch.zeros_like(e_obs)
        e_cond = self.hook_cond_embed(e_cond)
        e_time = self.hook_time_embed(self.embed_time(timestep.clamp(max=self.cfg.max_timestep - 1)))
        return self.hook_embed(e_obs + e_act + e_cond + e_time)

    def _kv(self, x: torch.Tensor) -> torch.Tensor:
        return self.kv(self.ln_kv(x))  # (..., L * 2 * C)

    def forward(self, obs, prev_action, cond, timestep, window: int = 0) -> torch.Tensor:
        """Action-distribution parameters for every position: (B, T, P).

        obs (B, T, O); prev_action (B, T, A) float or (B, T) long; cond (B, T, Dc); timestep (B, T).
        `window` > 0 limits each position to its last `window` tokens (0: all earlier tokens, T <= K).
        """
        B, T = timestep.shape
        C, H = self.cfg.d_model, self.cfg.n_heads
        x = self.drop(self.embed(obs, prev_action, cond, timestep))  # (B, T, C)
        kv = self._kv(x).view(B, T, self.cfg.n_layers, 2, H, C // H)
        # unbind, not indexing: its backward stacks the slices instead of zero-filling a full
        # (B, T, L*2*C) gradient per slice (that memset was ~8% of a training step).
        kv = kv.permute(2, 3, 0, 4, 1, 5).unbind(0)  # L x (2, B, H, T, D)
        h = x
        for block, (k, v) in zip(self.blocks, (layer.unbind(0) for layer in kv)):
            h = block(h, k, v, window=window)
        return self.head(self.ln_f(h))

    def forward_episodes(self, obs, prev_action, cond, timestep) -> torch.Tensor:
        """Parameters at every step of whole episodes (T may exceed K), each as the cached `step` gives it:
        (B, T, P). Inputs as `forward`, timestep 0..T-1 per row."""
        return self.forward(obs, prev_action, cond, timestep, window=self.cfg.context)

    def init_cache(self, num_envs: int) -> KVCache:
        """An empty rolling cache for `num_envs` environments."""
        width = self.cfg.n_layers * 2 * self.cfg.d_model
        return KVCache(torch.zeros(num_envs, self.cfg.context, width, device=self.act_start.device))

    def step(self, cache: KVCache, obs, prev_action, cond, timestep) -> torch.Tensor:
        """One new token per env (obs (B, O), ..., timestep (B,)): writes the cache, returns (B, P).

        Equal to forward() on each env's last K tokens: keys/values depend only on their token.
        Runs `step_tensors`, replayed from a trace when nothing could tell (models/traced.py).
        """
        return self._cached_step(cache, (obs, prev_action, cond, timestep), None, act=False)

    def act(self, cache: KVCache, obs, prev_action, cond, timestep, noise: torch.Tensor | None):
        """`step`, then the head's action from its parameters: sampled with `noise` (B, noise_dim), or the
        mode where noise is None. Returns (params (B, P), action (B, A) or (B,)). One call, so a traced
        replay covers the sampling's small kernels too."""
        return self._cached_step(cache, (obs, prev_action, cond, timestep), noise, act=True)

    def _cached_step(self, cache: KVCache, inputs: tuple, noise: torch.Tensor | None, act: bool):
        timestep = inputs[-1]
        B, K = timestep.shape[0], self.cfg.context
        first, last = (int(t) for t in timestep.aminmax()) if B else (0, 0)  # aminmax rejects an empty batch
        full, lockstep = first >= K - 1, B > 0 and first == last
        return self.step_traces.run(self, cache.kv, inputs, noise, full=full, lockstep=lockstep, act=act)

    def step_tensors(self, kv, obs, prev_action, cond, timestep, noise: torch.Tensor | None = None, *,
                     full: bool, lockstep: bool, act: bool = False):
        """`step` (or `act`, with `act`) on the cache tensor kv (B, K, L*2*C), with the branches decided:
        `full` (every env has filled all K slots, so nothing is masked) and `lockstep` (every env at the same
        timestep). No Python control flow depends on tensor values here, so a trace of it replays it exactly."""
        B = timestep.shape[0]
        C, H, K = self.cfg.d_model, self.cfg.n_heads, self.cfg.context
        x = self.embed(obs, prev_action, cond, timestep)  # (B, C)
        if lockstep:  # one slot for all envs (a rollout until an episode ends): a strided slice write
            kv.narrow(1, timestep[0] % K, 1).copy_(self._kv(x)[:, None])  # (B, 1, L*2*C)
        else:
            kv[torch.arange(B, device=x.device), timestep % K] = self._kv(x)  # (B, L*2*C) into each env's ring slot
        valid = None if full else torch.arange(K, device=x.device)[None] <= timestep[:, None]  # (B, K) filled slots
        kvs = kv.view(B, K, self.cfg.n_layers, 2, H, C // H).permute(2, 3, 0, 4, 1, 5)  # (L, 2, B, H, K, D)
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h, kvs[i, 0], kvs[i, 1], valid)
        params = self.head(self.ln_f(h))  # (B, P)
        if not act:
            return params
        return params, self.head.sample(params, noise, noise is None)

    def flops_per_token(self) -> float:
        """Forward multiply-adds x 2 per token at full context (training costs about 3x)."""
        c = self.cfg
        C, L, K = c.d_model, c.n_layers, c.context
        embed = 2 * C * (c.obs_dim + c.cond_dim + (0 if c.head == "categorical" else c.act_dim))
        per_layer = 2 * (2 * C * C + 2 * C * c.mlp_dim) + 2 * 2 * C * (K + 1) / 2  # proj + mlp + causal attn
        head = 2 * C * (c.act_dim if c.head == "categorical" else 2 * c.act_dim)
        return embed + 2 * C * 2 * L * C + L * per_layer + head
