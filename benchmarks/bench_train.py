"""Training throughput: our condition-token transformer vs Hugging Face DecisionTransformerModel.

Reference config (kzl/decision-transformer gym): batch 64, K = 20, state dim 11, action
dim 3 (continuous), 128 dim, 3 layers, 1 head, dropout 0.1, AdamW, grad clip 0.25. Same
machine, same process, interleaved rounds; the median step time of each side is used.

Ours includes drawing the batch from a SequenceSampler; the peer trains on pre-made
tensors (its best case). Ours is also reported as MFU against an fp32 matmul peak that
this script measures. Final line: JSON {"name", "ours", "peer", "ratio", "unit"}.
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch

from metatoken.data.dataset import Dataset, Episode
from metatoken.models.conditions import fit_condition
from metatoken.models.sequences import SequenceSampler
from metatoken.models.train import TrainConfig, action_nll, build_predictor, make_optimizer

B, K, OBS, ACT, DIM, LAYERS, HEADS, MAX_EP = 64, 20, 11, 3, 128, 3, 1, 1000


def synthetic_dataset(seed: int, episodes: int = 50, length: int = 200) -> Dataset:
    """Random hopper-shaped data: the benchmark measures the training step, not learning."""
    rng = np.random.default_rng(seed)
    eps = []
    for _ in range(episodes):
        eps.append(Episode(
            observations=rng.normal(size=(length + 1, OBS)).astype(np.float32),
            actions=rng.uniform(-1, 1, size=(length, ACT)).astype(np.float32),
            rewards=rng.normal(1.0, 0.1, size=length),
            terminations=np.zeros(length, bool), truncations=np.zeros(length, bool),
            intended=np.full(length, np.nan), exploit=np.zeros(length, bool),
        ))
    return Dataset(eps, gym.spaces.Box(-np.inf, np.inf, (OBS,)), gym.spaces.Box(-1, 1, (ACT,)))


def ours(data: Dataset, context: int = K):
    """A closure running one training step of our transformer (context 3K: the layout ablation)."""
    cond = fit_condition("rtg", data)
    model = build_predictor(data, cond, "transformer", d_model=DIM, n_layers=LAYERS, n_heads=HEADS,
                            context=context, max_timestep=MAX_EP, dropout=0.1)
    sampler = SequenceSampler(data, cond, context, discrete=False, seed=0)
    opt = make_optimizer(model, TrainConfig())
    model.train()

    def step() -> None:
        loss = action_nll(model, sampler.sample(B))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()

    return step, model.flops_per_token() * 3 * B * context


def peer():
    """A closure running one training step of HF DecisionTransformerModel (MSE, as in its example)."""
    from transformers import DecisionTransformerConfig, DecisionTransformerModel

    torch.manual_seed(0)
    cfg = DecisionTransformerConfig(
        state_dim=OBS, act_dim=ACT, hidden_size=DIM, n_layer=LAYERS, n_head=HEADS, n_inner=4 * DIM,
        max_ep_len=MAX_EP, activation_function="relu", resid_pdrop=0.1, embd_pdrop=0.1,
        attn_pdrop=0.1, n_positions=1024, action_tanh=True,
    )
    model = DecisionTransformerModel(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    states, actions = torch.randn(B, K, OBS, generator=g), torch.rand(B, K, ACT, generator=g) * 2 - 1
    rtg, rewards = torch.randn(B, K, 1, generator=g), torch.randn(B, K, 1, generator=g)
    timesteps = torch.randint(0, MAX_EP - K, (B, 1), generator=g) + torch.arange(K)
    mask = torch.ones(B, K, dtype=torch.long)

    def step() -> None:
        out = model(states=states, actions=actions, rewards=rewards, returns_to_go=rtg,
                    timesteps=timesteps, attention_mask=mask, return_dict=True)
        loss = ((out.action_preds - actions) ** 2)[mask > 0].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()

    return step


def matmul_peak(n: int = 1024, reps: int = 20) -> float:
    """fp32 matmul FLOP/s on this machine (best of three timings)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 * reps / best


def timed(fn, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10, help="steps per side per round")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = synthetic_dataset(0)
    ours_step, flops_per_step = ours(data)
    long_step, _ = ours(data, 3 * K)  # as many tokens per sample as the peer's (R, s, a) layout
    peer_step = peer()
    for fn in (ours_step, long_step, peer_step):  # warm up allocators and kernels
        timed(fn, 3)
    t_ours, t_long, t_peer = [], [], []
    for _ in range(args.rounds):
        t_ours.append(timed(ours_step, args.steps))
        t_long.append(timed(long_step, args.steps))
        t_peer.append(timed(peer_step, args.steps))
    s_ours, s_long, s_peer = (float(np.median(t)) for t in (t_ours, t_long, t_peer))
    peak = matmul_peak()
    print(f"threads={args.threads} ours {s_ours * 1e3:.1f} ms/step, peer (HF DT) {s_peer * 1e3:.1f} ms/step")
    print(f"tokens/sample: ours {K}, peer {3 * K}; model FLOPs/step (ours, 3x fwd) {flops_per_step / 1e9:.2f} G")
    print(f"layout ablation: ours at {3 * K} tokens/sample {s_long * 1e3:.1f} ms/step "
          f"(implementation alone {s_peer / s_long:.2f}x the peer; one token per step {s_long / s_ours:.2f}x more)")
    print(f"matmul peak {peak / 1e9:.0f} GFLOP/s; ours achieves {flops_per_step / s_ours / 1e9:.1f} GFLOP/s, "
          f"MFU {flops_per_step / s_ours / peak:.1%}")
    print(json.dumps({"name": "train_samples_per_s", "ours": round(B / s_ours, 1),
                      "peer": round(B / s_peer, 1), "ratio": round(s_peer / s_ours, 2), "unit": "samples/s"}))


if __name__ == "__main__":
    main()
