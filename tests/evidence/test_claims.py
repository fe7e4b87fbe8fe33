import json

import numpy as np
import pandas as pd
import pytest

from metatoken.evidence.claim_config import ClaimConfig
from metatoken.evidence.claims import CLAIMS, claims_json, claims_table
from metatoken.evidence.frontier import wide_runs

CFG = ClaimConfig(reps=200)
NOISE = np.array([-0.02, -0.01, 0.0, 0.01, 0.02])  # five seeds, mean 0


def tidy(runs: list[dict]) -> pd.DataFrame:
    """Runs (metadata with 'metrics': {name: value}) -> the long results table."""
    rows = []
    for run in runs:
        meta = {k: v for k, v in run.items() if k != "metrics"}
        rows += [{**meta, "metric": m, "value": float(v)} for m, v in run["metrics"].items()]
    return pd.DataFrame(rows)


def seeds(method, task="t", metrics=None, **meta):
    """Five seeds of one configuration; each metric is value + the seed's noise."""
    return [{"task": task, "method": method, "seed": s, **meta,
             "metrics": {k: v + NOISE[s] for k, v in (metrics or {}).items()}} for s in range(5)]


def verdict(claim, runs, cfg=CFG):
    return CLAIMS[claim](wide_runs(tidy(runs)), cfg)


CAP, EXP = "capability/intended", "spookiness/exploit_rate"


# ------------------------------------------------------------------ C1
def _c1(dense, sparse_far, sparse_near=1.0):
    runs = []
    for b in (1e4, 1e5):
        runs += seeds("ppo", "dense", {CAP: dense}, **{"task.reward": "dense", "task.summit_distance": 10,
                                                       "budget.env_steps": b})
        runs += seeds("ppo", "far", {CAP: sparse_far}, **{"task.reward": "sparse", "task.summit_distance": 10,
                                                         "budget.env_steps": b})
        runs += seeds("ppo", "near", {CAP: sparse_near}, **{"task.reward": "sparse", "task.summit_distance": 2,
                                                           "budget.env_steps": b})
    return runs


def test_c1_supported_contradicted_untestable():
    # the near sparse task (capability 1.0) must be left out: only the most distant sparse reward counts
    r = verdict("C1", _c1(dense=0.6, sparse_far=0.1))
    assert r.verdict == "supported" and r.estimate == pytest.approx(0.5)
    assert r.ci_low <= 0.5 <= r.ci_high
    assert verdict("C1", _c1(dense=0.1, sparse_far=0.6)).verdict == "contradicted"
    only_sparse = [x for x in _c1(0.6, 0.1) if x["task.reward"] == "sparse"]
    r = verdict("C1", only_sparse)
    assert r.verdict == "inconclusive" and "no budget" in r.reason
    r = verdict("C1", seeds("ppo", metrics={CAP: 0.5}))
    assert r.verdict == "inconclusive" and "task.reward" in r.reason


# ------------------------------------------------------------------ C2
SUCCESS = "implementation/success_rate"
LABELS = ["walk", "hop", "launch", "crawl", "fall"]


def _c2(sparse_exploit, other_exploit, sparse_success=1.0, sparse_cap=0.2):
    """Sparse ppo seeds that reach the summit by hopping (task success 1, intended only `sparse_cap`), each
    seed committing to a different implementation, against dense ppo and bc that walk a fixed mix."""
    runs = []
    for s, lab in enumerate(LABELS):
        shares = {f"implementation/{x}": float(x == lab) for x in LABELS}
        runs.append({"task": "sparse", "method": "ppo", "seed": s, "task.reward": "sparse",
                     "metrics": {CAP: sparse_cap, SUCCESS: sparse_success, EXP: sparse_exploit + NOISE[s],
                                 "implementation/walk_among_successes": float(lab == "walk"), **shares}})
    mixed = {f"implementation/{x}": 0.2 for x in LABELS}  # every seed the same mix: no spread between seeds
    for method in ("ppo", "bc"):
        runs += seeds(method, "dense", {CAP: 0.9, SUCCESS: 0.9, EXP: other_exploit, **mixed,
                                        "implementation/walk_among_successes": 0.2}, **{"task.reward": "dense"})
    return runs


def test_c2_supported_contradicted_untestable():
    r = verdict("C2", _c2(0.8, 0.1))
    assert r.verdict == "supported" and r.estimate == pytest.approx(0.7)
    assert "spread (bits) 2.32" in r.reason  # log2(5): all variety between seeds
    assert verdict("C2", _c2(0.0, 0.5)).verdict == "contradicted"
    r = verdict("C2", _c2(0.8, 0.1, sparse_success=0.2, sparse_cap=0.9))
    assert r.verdict == "inconclusive" and "no successful sparse-reward RL run" in r.reason


def test_c2_success_is_the_tasks_own_not_intended():
    # the hopping sparse runs reach the summit every time but score intended 0.2: they succeed at the task,
    # so C2 is about them (the old rule, intended >= 0.5, found no successful sparse run here)
    r = verdict("C2", _c2(0.8, 0.1, sparse_success=1.0, sparse_cap=0.2))
    assert r.verdict == "supported" and "5 runs" in r.evidence
    # intended 0.9 with the summit reached in 20% of episodes is not success
    r = verdict("C2", _c2(0.8, 0.1, sparse_success=0.2, sparse_cap=0.9))
    assert "no successful sparse-reward RL run" in r.reason


def test_c2_success_falls_back_to_normalized_return():
    runs = _c2(0.8, 0.1)
    for run in runs:  # a task without the implementation audit: the return on the data's scale decides
        m = run["metrics"]
        won = m.pop(SUCCESS)
        m["capability/normalized_return"] = 0.3 if run["task"] == "sparse" else won
    r = verdict("C2", runs)
    assert r.verdict == "inconclusive" and "no successful sparse-reward RL run" in r.reason
    for run in runs:
        if run["task"] == "sparse":
            run["metrics"]["capability/normalized_return"] = 0.7
    assert verdict("C2", runs).verdict == "supported"
    gone = [{**x, "metrics": {k: v for k, v in x["metrics"].items() if k != "capability/normalized_return"}}
            for x in runs]
    r = verdict("C2", gone)
    assert r.verdict == "inconclusive" and "lack a success column" in r.reason


def test_c2_spread_is_read_within_a_configuration():
    # two budgets; within each, every seed hops (or every seed walks): no spread between seeds, although
    # pooling the two budgets would show one bit of it
    runs = []
    for budget, lab in ((1e4, "hop"), (1e6, "walk")):
        for s in range(3):
            runs.append({"task": "sparse", "method": "ppo", "seed": s, "task.reward": "sparse",
                         "budget.env_steps": budget,
                         "metrics": {CAP: 0.2, SUCCESS: 1.0, EXP: 0.5, **{f"implementation/{x}": float(x == lab)
                                                                          for x in LABELS}}})
    for s in range(3):
        runs.append({"task": "sparse", "method": "bc", "seed": s, "task.reward": "sparse", "budget.env_steps": 0.0,
                     "metrics": {CAP: 0.9, SUCCESS: 1.0, EXP: 0.0, "implementation/walk": 1.0}})
    r = verdict("C2", runs)
    assert "spread (bits) 0 over 2 sparse configuration(s)" in r.reason
    assert r.verdict == "inconclusive"  # exploit supported, spread 0 - 0 has a [0, 0] interval
    # a configuration with one successful seed has no spread to read
    r = verdict("C2", [x for x in runs if x["seed"] == 0 or x["method"] == "bc"])
    assert "no configuration has 2 or more successful sparse-reward RL seeds" in r.reason


# ------------------------------------------------------------------ C3
def _c3(found):
    runs = []
    for bits, f in zip((2.0, 6.0, 12.0), found, strict=True):
        meta = {"task.reward": "sparse", "task.sparsity_bits": bits}
        runs += seeds("ppo", f"b{bits}", {"capability/return": f}, **meta, **{"budget.env_steps": 1e6})
        # a smaller budget finds the reward more often here: only the largest budget may be read
        runs += seeds("ppo", f"b{bits}", {"capability/return": 0.5}, **meta, **{"budget.env_steps": 1e4})
    return runs


def test_c3_supported_contradicted_untestable():
    r = verdict("C3", _c3([0.9, 0.4, 0.0]))
    assert r.verdict == "supported" and r.estimate == pytest.approx(0.0, abs=1e-12)
    assert verdict("C3", _c3([0.9, 0.6, 0.5])).verdict == "contradicted"
    r = verdict("C3", [x for x in _c3([0.9, 0.4, 0.0]) if x["task.sparsity_bits"] == 2.0])
    assert r.verdict == "inconclusive" and "fewer than 2 sparsity levels" in r.reason


# ------------------------------------------------------------------ C4 and C6: a point against a frontier
def _frontier(method, knob, metric, values, task="t"):
    """capability 0.2, 0.4, ..., 1.0 along the knob; `values(capability)` gives the metric."""
    runs = []
    for k, cap in enumerate((0.2, 0.4, 0.6, 0.8, 1.0)):
        runs += seeds(method, task, {CAP: cap, metric: values(cap)}, **{knob: float(k)})
    return runs


def test_c4_offline_against_the_online_frontier():
    ppo = _frontier("ppo", "budget.env_steps", EXP, lambda c: c)  # exploit rate = capability
    r = verdict("C4", ppo + seeds("bc", metrics={CAP: 0.6, EXP: 0.1}))
    assert r.verdict == "supported" and r.estimate == pytest.approx(0.1 - 0.6, abs=0.02)
    assert verdict("C4", ppo + seeds("iql", metrics={CAP: 0.6, EXP: 0.9})).verdict == "contradicted"
    r = verdict("C4", ppo + seeds("bc", metrics={CAP: 0.05, EXP: 0.1}))  # far below the online frontier
    assert r.verdict == "inconclusive" and "overlapping capability" in r.reason



def test_c4_leaves_out_a_pair_whose_overlap_most_resamples_lack():
    # ppo's top budget has a skewed seed spread (mean 0.6, most resampled means below it); bc's range starts at
    # 0.6, so bc meets ppo on the runs but not in most resamples. iql meets ppo's frontier at 0.3 in all of them.
    top = [0.5, 0.5, 0.5, 0.55, 0.95]
    ppo = _frontier("ppo", "budget.env_steps", EXP, lambda c: c)[:10]  # budgets 0 and 1: capability 0.2, 0.4
    ppo += [{"task": "t", "method": "ppo", "seed": s, "budget.env_steps": 2.0, "metrics": {CAP: c, EXP: c}}
            for s, c in enumerate(top)]
    bc = seeds("bc", metrics={CAP: float(np.mean(top)) + 0.05, EXP: 0.1})
    r = verdict("C4", ppo + bc + seeds("iql", metrics={CAP: 0.3, EXP: 0.0}), ClaimConfig(reps=1000))
    # iql vs ppo alone: 0 - 0.3; averaging bc's pair in where a resample reaches it would give about -0.4
    assert r.estimate == pytest.approx(-0.3, abs=0.01) and r.ci_low <= -0.29 and r.ci_high >= -0.31
    assert "left out" in r.evidence and "bc vs ppo" in r.evidence.split("left out")[1]
    assert r.verdict == "supported"

def test_c6_predictor_against_kl_finetune():
    mmd = "distribution/mmd"
    kl = _frontier("kl-finetune", "hp.beta", mmd, lambda c: 0.5)
    assert verdict("C6", kl + seeds("condition", metrics={CAP: 0.6, mmd: 0.05})).verdict == "supported"
    assert verdict("C6", kl + seeds("condition", metrics={CAP: 0.6, mmd: 0.9})).verdict == "contradicted"
    r = verdict("C6", _frontier("kl-finetune", "hp.beta", EXP, lambda c: 0.5) + seeds("condition", metrics={CAP: 0.6}))
    assert r.verdict == "inconclusive" and "distribution/mmd" in r.reason
    r = verdict("C6", seeds("condition", metrics={CAP: 0.6, mmd: 0.05}))  # no RL fine-tuning run at all
    assert r.verdict == "inconclusive" and r.reason.startswith("no run of kl-finetune")


# ------------------------------------------------------------------ C5
def test_c5_controllability():
    rho = "controllability/spearman"
    assert verdict("C5", seeds("condition", metrics={rho: 0.9})).verdict == "supported"
    assert verdict("C5", seeds("condition", metrics={rho: 0.1})).verdict == "contradicted"
    assert verdict("C5", seeds("condition", metrics={rho: 0.5})).verdict == "inconclusive"
    r = verdict("C5", seeds("bc", metrics={rho: 0.9}))
    assert r.verdict == "inconclusive" and "no predictor run" in r.reason


# ------------------------------------------------------------------ C7
RET = "capability/normalized_return"


def _c7(slope, drift=None):
    runs = []
    for lam in (0.0, 0.5, 1.0, 2.0):
        m = {RET: 0.4 + slope * lam, CAP: 0.4 - slope * lam}  # intended moves the other way: C7 must not read it
        if drift is not None:
            m["training/equilibrium_drift"] = drift
        runs += seeds("mixture", metrics=m, **{"hp.lam": lam})
    return runs


def test_c7_monotone_and_stable():
    r = verdict("C7", _c7(0.2, drift=0.02))
    assert r.verdict == "supported" and r.estimate > 0.8
    r = verdict("C7", _c7(0.2))  # monotone, but stability is not measured
    assert r.verdict == "inconclusive" and "training/equilibrium_drift" in r.reason
    assert verdict("C7", _c7(-0.2, drift=0.02)).verdict == "contradicted"
    assert verdict("C7", _c7(0.2, drift=0.5)).verdict == "contradicted"
    r = verdict("C7", [x for x in _c7(0.2, 0.02) if x["hp.lam"] < 1])
    assert r.verdict == "inconclusive" and "3 or more values" in r.reason
    r = verdict("C7", [{**x, "metrics": {CAP: x["metrics"][CAP]}} for x in _c7(0.2, 0.02)])
    assert r.verdict == "inconclusive" and RET in r.reason


def test_c7_c8_read_the_recipes_spec_layout():
    # specs/recipes.yaml's layout: bc and rl-as-sl (no hp.lam: NaN in the table) beside mixture at 3 lambdas
    ratio = "charts/grad_variance_ratio"
    runs = seeds("bc", metrics={CAP: 0.6, RET: 0.6}) + seeds("rl-as-sl", metrics={CAP: 0.62, RET: 0.6, ratio: 4.0})
    for lam, ret in ((0.0, 0.6), (1.0, 0.8), (3.0, 0.9)):
        runs += seeds("mixture", metrics={CAP: 0.6, RET: ret, "training/equilibrium_drift": 0.01}, **{"hp.lam": lam})
    r7, r8 = verdict("C7", runs), verdict("C8", runs)
    assert r7.verdict == "supported" and r7.estimate > 0.8
    assert r8.verdict == "supported" and r8.estimate == pytest.approx(0.02)
    assert "log ratio 1.39" in r8.reason  # log 4


# ------------------------------------------------------------------ C8
def test_c8_matches_at_higher_variance():
    ratio = "charts/grad_variance_ratio"
    bc = seeds("bc", metrics={CAP: 0.7})
    r = verdict("C8", bc + seeds("rl-as-sl", metrics={CAP: 0.7, ratio: 5.0}))
    assert r.verdict == "supported" and r.estimate == pytest.approx(0.0, abs=1e-12)
    assert verdict("C8", bc + seeds("rl-as-sl", metrics={CAP: 0.2, ratio: 5.0})).verdict == "contradicted"
    assert verdict("C8", bc + seeds("rl-as-sl", metrics={CAP: 0.7, ratio: 0.2})).verdict == "contradicted"
    r = verdict("C8", bc)
    assert r.verdict == "inconclusive" and "rl-as-sl" in r.reason


# ------------------------------------------------------------------ C9
def _c9(spooks):
    rl = "ledger/kl_to_reference_nats"
    runs = []
    for (method, knob), amount, spook in zip(
            [("ppo", "budget.env_steps"), ("kl-finetune", "hp.beta"), ("mixture", "hp.lam")], (10.0, 5.0, 1.0),
            spooks, strict=True):
        for k, cap in enumerate((0.2, 0.5, 0.8)):
            runs += seeds(method, metrics={CAP: cap, rl: amount, EXP: spook}, **{knob: float(k)})
    return runs


def test_c9_rank_correlation_at_matched_capability():
    r = verdict("C9", _c9([0.9, 0.5, 0.1]))
    assert r.verdict == "supported" and r.estimate == pytest.approx(1.0)
    r = verdict("C9", _c9([0.1, 0.5, 0.9]))
    assert r.verdict == "contradicted" and r.estimate == pytest.approx(-1.0)
    r = verdict("C9", [x for x in _c9([0.9, 0.5, 0.1]) if x["method"] != "mixture"])
    assert r.verdict == "inconclusive" and "3 or more recipes" in r.reason


def test_claims_table_on_one_experiment_with_every_kind_of_run():
    """Each claim reads only its own runs: other runs (lacking its metrics) change nothing."""
    c6 = _frontier("kl-finetune", "hp.beta", "distribution/mmd", lambda c: 0.5, task="t6")
    c6 += seeds("condition", "t6", {CAP: 0.6, "distribution/mmd": 0.05, "controllability/spearman": 0.9})
    c7 = [{**r, "task": "t7"} for r in _c7(0.2, drift=0.02)]
    c4 = _frontier("ppo", "budget.env_steps", EXP, lambda c: c, task="t4") + seeds("bc", "t4", {CAP: 0.6, EXP: 0.1})
    runs = _c1(0.6, 0.1) + _c3([0.9, 0.4, 0.0]) + _c9([0.9, 0.5, 0.1]) + c4 + c6 + c7
    rows = {r.claim: r for r in claims_table(tidy(runs), CFG)}
    assert list(rows) == [f"C{i}" for i in range(1, 10)]
    expected = {"C1": "supported", "C3": "supported", "C4": "supported", "C5": "supported", "C6": "supported",
                "C7": "supported", "C9": "supported", "C8": "inconclusive"}
    assert {k: rows[k].verdict for k in expected} == expected
    assert rows["C1"].estimate == pytest.approx(0.5) and rows["C9"].estimate == pytest.approx(1.0)
    back = json.loads(json.dumps(claims_json(tidy(runs), CFG), allow_nan=False))["claims"]  # NaN -> null
    assert back[7]["claim"] == "C8" and back[7]["estimate"] is None
    assert set(back[0]) == {"claim", "statement", "evidence", "estimate", "ci_low", "ci_high", "verdict", "reason"}
