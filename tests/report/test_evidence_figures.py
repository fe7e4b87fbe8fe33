"""The evidence figures draw from a per-run table and skip with a note when their inputs are absent."""

import numpy as np
import pandas as pd

from metatoken.report.evidence_figures import (
    axis_labels,
    entropy_figure,
    matched_capability_figure,
    phase_grid,
    phase_heatmaps,
    runs_table,
)


def _runs() -> pd.DataFrame:
    """ppo at 2 distances x 2 budgets x 3 seeds (sparse reward) plus bc and kl-finetune at 2 betas."""
    rows = []
    for dist, bits in ((2, 3.0), (8, 11.0)):
        for budget in (1e4, 1e5):
            for seed in range(3):
                success = 1.0 if (budget == 1e5 and dist == 2) else (0.5 if budget == 1e5 else 0.0) * seed
                rows.append({"task": f"sparse-{dist}", "method": "ppo", "seed": seed, "task.reward": "sparse",
                             "task.summit_distance": dist, "task.sparsity_bits": bits, "budget.env_steps": budget,
                             "capability/intended": success, "spookiness/exploit_rate": 0.1 * seed,
                             "ledger/kl_to_reference_per_step": budget / 1e5})
    for seed in range(3):
        for beta in (0.1, 1.0):
            rows.append({"task": "sparse-2", "method": "kl-finetune", "seed": seed, "hp.beta": beta,
                         "budget.env_steps": 0.0, "task.summit_distance": 2, "task.sparsity_bits": 3.0,
                         "task.reward": "sparse", "capability/intended": 0.3 + 0.2 * (beta == 0.1) + 0.01 * seed,
                         "spookiness/exploit_rate": 0.2 * (beta == 0.1), "ledger/kl_to_reference_per_step": 1 / beta})
        rows.append({"task": "sparse-2", "method": "bc", "seed": seed, "budget.env_steps": 0.0,
                     "task.summit_distance": 2, "task.sparsity_bits": 3.0, "task.reward": "sparse",
                     "capability/intended": 0.4, "spookiness/exploit_rate": 0.0,
                     "ledger/kl_to_reference_per_step": 0.0})
    return pd.DataFrame(rows)


def test_phase_grid_is_one_group_by_with_known_cells():
    ppo = _runs()[lambda f: f.method == "ppo"]
    mean = phase_grid(ppo, "task.sparsity_bits", "capability/intended")
    assert list(mean.index) == [3.0, 11.0] and list(mean.columns) == [1e4, 1e5]
    np.testing.assert_allclose(mean.to_numpy(), [[0.0, 1.0], [0.0, 0.5]])  # far summit: seeds 0, .5, 1
    spread = phase_grid(ppo, "task.sparsity_bits", "capability/intended", "std")
    np.testing.assert_allclose(spread.to_numpy(), [[0.0, 0.0], [0.0, 0.5]])


def test_figures_draw_when_their_inputs_exist():
    runs = _runs()
    for uri, caption in (matched_capability_figure(runs), phase_heatmaps(runs)):
        assert uri.startswith("data:image/png;base64,") and caption
    assert "task.sparsity_bits" in phase_heatmaps(runs)[1]
    assert "ledger/kl_to_reference_per_step" in matched_capability_figure(runs)[1]


def test_a_task_without_measured_runs_gets_a_blank_panel_that_says_so(recwarn):
    runs = _runs()
    blank = runs[runs.task == "sparse-8"].assign(**{"capability/intended": np.nan})  # nothing to plot there
    uri, _ = matched_capability_figure(pd.concat([runs[runs.task == "sparse-2"], blank]))
    assert uri.startswith("data:image/png;base64,")
    assert not [w for w in recwarn if "legend" in str(w.message)]  # no empty legend drawn


def test_figures_skip_with_a_note_when_inputs_are_absent():
    runs = _runs()
    one_budget = runs[runs["budget.env_steps"] != 1e5]
    assert phase_heatmaps(one_budget)[0] is None and "skipped" in phase_heatmaps(one_budget)[1]
    assert phase_heatmaps(runs[runs.method != "ppo"])[0] is None
    assert matched_capability_figure(runs.drop(columns="spookiness/exploit_rate"))[0] is None
    uri, note = entropy_figure(runs)
    assert uri is None and "policy/action_entropy" in note
    assert entropy_figure(runs.assign(**{"policy/action_entropy": 1.0}))[0].startswith("data:image/png")


def test_runs_table_reads_the_results_with_method_ids(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from metatoken.experiments.results import SCHEMA

    rows = {"experiment": ["x"] * 2, "task": ["t"] * 2, "method": ["ppo-env_steps=10"] * 2, "seed": [0, 0],
            "metric": ["a", "b"], "value": [1.0, 2.0], "method_id": ["ppo"] * 2, "task_id": ["mountain"] * 2}
    pq.write_table(pa.table(rows, schema=SCHEMA), tmp_path / "results.parquet")
    table = runs_table(tmp_path)
    assert table[["method", "label", "a", "b"]].values.tolist() == [["ppo", "ppo-env_steps=10", 1.0, 2.0]]


def test_sparsity_axis_marks_lower_bounds():
    frame = pd.DataFrame({"task.sparsity_bits": [4.03, 12.06, 12.06], "task.sparsity_bits_high": [4.1, np.inf, np.inf]})
    assert axis_labels(frame, "task.sparsity_bits", [4.03, 12.06]) == ["4.03", "≥ 12.1"]
    assert axis_labels(frame.drop(columns="task.sparsity_bits_high"), "task.sparsity_bits", [12.06]) == ["12.1"]
