"""Every seed stream of a run, named and derived in one place.

A run has one seed (the spec's `seeds:` entry). Everything random that a run, its data or
its measurements touch derives its own seed here, so streams never overlap by accident and
a reader can see them all at once. The constants are the values the lab has always used
(changing one moves every metric), so they stay as they are.

| stream | seed |
|---|---|
| reference data, behaviour b of a task | `data_seed * 1_000_003 + b * 10_007` |
| training (model init, windows, dropout) | the run seed |
| reference policy pi_ref training | `REFERENCE_TRAIN_SEED` (0): one pi_ref per task variant |
| evaluation episodes (env i: + i) | `1_000_000 + 1000 * run seed` |
| a second policy scored along those episodes | its policy seed + `SECOND_POLICY_OFFSET` |
| online collection batch j | `run seed * 100_003 + j` |
| an auxiliary generator inside a method | `run seed + 1` |
| `metatoken probe` behaviour b (env i: + i) | `2_000_000 + probe seed * 1_000_003 + b * 10_007` |
| text: pretraining batch j (samples from p0) | `TEXT_PRETRAIN_OFFSET + run seed * 100_003 + j` |
| text: a recipe's labelled corpus batch j (j = 0 calibrates) | `TEXT_CORPUS_OFFSET + seed * 100_003 + j` |
| text: a recipe's own samples (policy gradient, DPO pairs' labels) | torch generator `auxiliary(run seed)` |
| text: sampled KL estimators and sampled metrics | torch generator `evaluation(run seed)` |
| a measurement's bootstrap or subsample, use u (fixed) | `MEASUREMENT_SEED_OFFSET + u` |
| Monte Carlo sparsity of a task variant (env i: + i; the action sampler: the seed) | `SPARSITY_SEED` |
"""

from __future__ import annotations

EVAL_SEED_OFFSET = 1_000_000  # evaluation seeds never overlap training or data seeds
REFERENCE_TRAIN_SEED = 0
SECOND_POLICY_OFFSET = 7919  # a teacher-forced policy's own sampling stream (a prime: no collisions with + i)
_ONLINE_STRIDE = 100_003
TEXT_PRETRAIN_OFFSET = 3_000_000_019  # text streams sit far from every control stream
TEXT_CORPUS_OFFSET = 5_000_000_029
_DATA_STRIDE, _BEHAVIOUR_STRIDE = 1_000_003, 10_007
PROBE_SEED_OFFSET = 2_000_000  # above the evaluation seeds of run seeds < 1000
MEASUREMENT_SEED_OFFSET = 4_000_000  # a measurement's own resampling streams
SPARSITY_SEED = 9_000_000_011  # above every other stream (text's reach ~7e9 at run seed 2e4)


def data(data_seed: int, behaviour_index: int) -> int:
    """Reference-data collection of one behaviour of a task variant."""
    return data_seed * _DATA_STRIDE + behaviour_index * _BEHAVIOUR_STRIDE


def training(run_seed: int) -> int:
    """Model initialisation, window sampling and dropout of a run's training."""
    return run_seed


def evaluation(run_seed: int) -> int:
    """The first evaluation episode's env seed (episode i uses + i)."""
    return EVAL_SEED_OFFSET + 1000 * run_seed


def second_policy(policy_seed: int) -> int:
    """The sampling stream of a policy teacher-forced along another policy's episodes."""
    return policy_seed + SECOND_POLICY_OFFSET


def online(run_seed: int, batch: int) -> int:
    """The env and policy seed of a method's online collection batch `batch`."""
    return run_seed * _ONLINE_STRIDE + batch


def auxiliary(run_seed: int) -> int:
    """A method's own extra generator (for example rl-as-sl's action samples)."""
    return run_seed + 1


def text_pretraining(run_seed: int, batch: int) -> int:
    """The p0 samples of text pretraining batch `batch`."""
    return TEXT_PRETRAIN_OFFSET + run_seed * _ONLINE_STRIDE + batch


def text_corpus(run_seed: int, batch: int) -> int:
    """Batch `batch` of the p0 samples a text recipe labels with the reward (its offline corpus)."""
    return TEXT_CORPUS_OFFSET + run_seed * _ONLINE_STRIDE + batch


def probe(probe_seed: int, behaviour_index: int) -> int:
    """The first env seed of behaviour `behaviour_index` in `metatoken probe --seed probe_seed`."""
    return PROBE_SEED_OFFSET + probe_seed * _DATA_STRIDE + behaviour_index * _BEHAVIOUR_STRIDE


def measurement(use: int) -> int:
    """The generator seed of a measurement's resampling `use` (a bootstrap of level k, a state subsample)."""
    return MEASUREMENT_SEED_OFFSET + use


def sparsity() -> int:
    """The first env seed of a task variant's Monte Carlo sparsity (env i: + i); one per variant, fixed."""
    return SPARSITY_SEED
