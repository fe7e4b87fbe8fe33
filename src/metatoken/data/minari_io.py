"""Read and write datasets in the Minari format (HDF5 storage), using Minari's own storage.

The audit travels in each episode's `infos` (`intended`, `exploit`), and the behaviour
policy's name in the episode metadata. Reading goes through `minari.MinariDataset`, so
any Minari dataset with Box/Discrete spaces loads too (its audit is then NaN / False).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import minari
import numpy as np
from minari import MinariDataset
from minari.data_collector.episode_buffer import EpisodeBuffer
from minari.dataset.minari_storage import MinariStorage

from metatoken.data.dataset import Dataset, Episode
from metatoken.errors import UserError


def save(dataset: Dataset, path: Path, dataset_id: str = "metatoken/reference-v0") -> None:
    """Write atomically: a temp directory beside `path`, renamed into place."""
    path = Path(path).resolve()  # Minari's storage joins a relative data path onto itself
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        storage = MinariStorage.new(
            tmp / "data",
            observation_space=dataset.observation_space,
            action_space=dataset.action_space,
            data_format="hdf5",
        )
        buffers = []
        for i, ep in enumerate(dataset.episodes):
            # Minari infos hold one entry per observation: the reset info first.
            intended = np.concatenate([[0.0], ep.intended])
            exploit = np.concatenate([[False], ep.exploit])
            buffers.append(
                EpisodeBuffer(
                    id=i,
                    seed=ep.seed,
                    observations=ep.observations,
                    actions=ep.actions,
                    rewards=list(ep.rewards),
                    terminations=list(ep.terminations),
                    truncations=list(ep.truncations),
                    infos={"intended": intended, "exploit": exploit},
                )
            )
        storage.update_episodes(buffers)
        storage.update_episode_metadata(
            [{"behaviour": ep.behaviour} for ep in dataset.episodes], range(len(dataset.episodes))
        )
        storage.update_metadata({
            "dataset_id": dataset_id,
            "minari_version": minari.__version__,
            "algorithm_name": "scripted behaviour policies (metatoken)",
            "metatoken_task_key": dataset.task_key,
            **dataset.metadata,
        })
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_arrays(path: Path, observation_space, action_space, episodes: list[dict],
                dataset_id: str = "user/reference-v0") -> None:
    """Write episodes given as arrays (a user's own recording) as a Minari dataset.

    Each episode is a mapping with `observations` (T+1, ...), `actions` (T, ...), `rewards`,
    `terminations` and `truncations` (T,); it carries no audit (intended NaN, no exploit).
    """
    eps = []
    for i, e in enumerate(episodes):
        t = len(e["rewards"])
        eps.append(Episode(
            observations=np.asarray(e["observations"]), actions=np.asarray(e["actions"]),
            rewards=np.asarray(e["rewards"], dtype=float),
            terminations=np.asarray(e["terminations"], dtype=bool),
            truncations=np.asarray(e["truncations"], dtype=bool),
            intended=np.full(t, np.nan), exploit=np.zeros(t, dtype=bool),
            behaviour=str(e.get("behaviour", "user")), seed=e.get("seed"),
        ))
    save(Dataset(eps, observation_space, action_space), path, dataset_id)


def locate(source: str) -> Path:
    """A dataset option -> the Minari dataset directory: a path, or an id under MINARI_DATASETS_PATH."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    root = Path(os.environ.get("MINARI_DATASETS_PATH", Path.home() / ".minari" / "datasets"))
    if (root / source).exists():
        return root / source
    raise UserError(f"dataset {source!r}: no such directory, and no Minari dataset of that id under {root}")


def load(path: Path) -> Dataset:
    """Load a Minari dataset directory (the one holding `data/`, or `data/` itself)."""
    path = Path(path).resolve()
    data_dir = path / "data" if (path / "data").is_dir() else path
    if not (data_dir / "metadata.json").exists():
        raise UserError(f"{path}: not a Minari dataset (no data/metadata.json)")
    try:
        ds = MinariDataset(data_dir)
        meta = ds.storage.metadata
        ep_meta = list(ds.storage.get_episode_metadata(ds.episode_indices))
        episodes = []
        for ep, em in zip(ds.iterate_episodes(), ep_meta):
            infos = ep.infos or {}
            n = len(ep.rewards)
            intended = np.asarray(infos.get("intended", np.full(n + 1, np.nan)), dtype=float)[1:]
            exploit = np.asarray(infos.get("exploit", np.zeros(n + 1, bool)), dtype=bool)[1:]
            episodes.append(
                Episode(
                    observations=np.asarray(ep.observations),
                    actions=np.asarray(ep.actions),
                    rewards=np.asarray(ep.rewards, dtype=float),
                    terminations=np.asarray(ep.terminations, dtype=bool),
                    truncations=np.asarray(ep.truncations, dtype=bool),
                    intended=intended,
                    exploit=exploit,
                    behaviour=str(em.get("behaviour", "")),
                    seed=None if em.get("seed") is None else int(em["seed"]),
                )
            )
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"{path}: corrupt Minari dataset ({err})") from err
    return Dataset(
        episodes,
        ds.observation_space,
        ds.action_space,
        task_key=str(meta.get("metatoken_task_key", "")),
        metadata={"dataset_id": str(meta.get("dataset_id", ""))},
    )
