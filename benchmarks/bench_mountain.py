"""Mountain throughput: our vectorised env vs gymnasium's SyncVectorEnv over the same env.

Both run in this process on `metatoken/Mountain-v1` (or `--version v0`) at batch 1024 with the same
pregenerated uniform random actions (action sampling is not timed; random actions fall
often, so autoresets are part of the cost). Also the single env's steps/s through
`gym.make` (time limit and checker wrappers included). Prints a final JSON line.

    .venv/bin/python benchmarks/bench_mountain.py [--batch 1024] [--seconds 2.0] [--version v1]
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np
from envrates import single_rate, vector_rate

import metatoken.envs  # noqa: F401  (registers the Mountain ids)

UNIT = "steps/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per measurement")
    parser.add_argument("--version", choices=["v0", "v1"], default="v1")
    args = parser.parse_args()
    env_id = f"metatoken/Mountain-{args.version}"
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(64, args.batch, 4)).astype(np.float32)  # (T, B, 4)
    ours = vector_rate(gym.make_vec(env_id, args.batch, vectorization_mode="vector_entry_point"),
                       actions, args.seconds)
    # The peer is slow per step: a short action block cycled suffices.
    peer = vector_rate(gym.make_vec(env_id, args.batch, vectorization_mode="sync"), actions[:4], args.seconds)
    single = single_rate(gym.make(env_id), actions[:, 0], args.seconds)
    print(json.dumps({"name": f"mountain-{args.version}-single-env", "ours": round(single), "unit": UNIT}))
    print(json.dumps({"name": f"mountain-{args.version}-vec{args.batch}", "ours": round(ours), "peer": round(peer),
                      "ratio": round(ours / peer, 1), "unit": UNIT}))


if __name__ == "__main__":
    main()
