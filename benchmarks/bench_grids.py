"""GlitchGrid throughput: our vector envs vs gymnasium's SyncVectorEnv over the same env.

Both run in this process on the same registered id at batch 1024, with the same
pregenerated random actions (so action sampling is not timed). Also the single env's
steps/s through `gym.make` (time limit and checker wrappers included). Prints one JSON
line per grid, then a final line for the worst grid's ratio.

    .venv/bin/python benchmarks/bench_grids.py [--batch 1024] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np
from envrates import single_rate, vector_rate

from metatoken.envs import GLITCHGRID_IDS

UNIT = "env-steps/s"


def bench(env_id: str, batch: int, seconds: float, seed: int = 0) -> dict:
    """One grid: ours and the peer at `batch`, plus the single env."""
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 4, size=(64, batch))  # (T, B) pregenerated
    ours = vector_rate(gym.make_vec(env_id, batch, vectorization_mode="vector_entry_point"),
                       actions, seconds)
    # The peer is slow per step: a few cycles of a short action block suffice.
    peer = vector_rate(gym.make_vec(env_id, batch, vectorization_mode="sync"), actions[:8], seconds)
    single = single_rate(gym.make(env_id), [int(a) for a in actions[:, 0]] * 16, seconds / 2)
    name = env_id.split("/")[1].removesuffix("-v0")
    return {"name": f"{name}-vec{batch}", "ours": round(ours), "peer": round(peer),
            "ratio": round(ours / peer, 1), "unit": UNIT, "single_env": round(single)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per measurement")
    args = parser.parse_args()
    rows = [bench(env_id, args.batch, args.seconds) for env_id in GLITCHGRID_IDS]
    for row in rows:
        print(json.dumps(row), flush=True)
    worst = min(rows, key=lambda r: r["ratio"])
    print(json.dumps({"name": f"glitchgrids-vec{args.batch}-worst ({worst['name']})",
                      "ours": worst["ours"], "peer": worst["peer"], "ratio": worst["ratio"],
                      "unit": UNIT}))


if __name__ == "__main__":
    main()
