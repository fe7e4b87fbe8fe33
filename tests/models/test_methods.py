"""The predictor methods on the slice task: controllable, ledgered, savable, strict about options."""

import numpy as np
import pytest
from pydantic import ValidationError

from metatoken.evaluate.evaluate import command_levels, evaluate
from metatoken.methods import Budget, make_method
from metatoken.methods.base import NullLogger
from metatoken.models.checkpoint import load_policy
from metatoken.policy import SavablePolicy


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation with average ranks for ties."""
    def ranks(v):
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for value in np.unique(v):  # average ranks over ties
            r[v == value] = r[v == value].mean()
        return r
    return float(np.corrcoef(ranks(np.asarray(x, float)), ranks(np.asarray(y, float)))[0, 1])


def test_spearman_known_answer():
    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1.0)
    assert spearman(np.array([1, 2, 3, 4]), np.array([1, 3, 2, 4])) == pytest.approx(0.8)


@pytest.mark.parametrize("method,options", [("condition", {}), ("condition-mlp", {})])
def test_achieved_return_rises_with_commanded_return(grid_task, grid_dataset, method, options, record_property):
    trained = make_method(method, options).train(grid_task, grid_dataset, Budget(gradient_steps=400),
                                                 0, NullLogger())
    r = evaluate(grid_task, trained.policy, grid_dataset, episodes=20, seed=0)
    rho = spearman(r.target, r.returns)
    means = [r.returns[r.target == lv].mean() for lv in command_levels(grid_dataset)]
    print(f"{method}: Spearman rho(commanded, achieved) = {rho:.3f}; mean return per level {np.round(means, 3)}")
    record_property("spearman_rho", rho)  # lands in the JUnit XML report too
    assert rho > 0.7, f"Spearman rho = {rho:.3f}"
    assert means[-1] > means[0] + 0.5


def test_ledger_and_checkpoint(tmp_path, grid_task, grid_dataset):
    for method in ("bc", "condition"):
        trained = make_method(method, {"d_model": 16, "n_layers": 1}).train(
            grid_task, grid_dataset, Budget(gradient_steps=20), 0, NullLogger())
        ledger, policy = trained.ledger, trained.policy
        assert ledger.gradient_steps == 20 and ledger.online_env_steps == 0 and ledger.reward_queries == 0
        assert ledger.train_flops > 0 and ledger.wall_time_s > 0
        assert isinstance(policy, SavablePolicy) and policy.conditioned == (method == "condition")
        policy.save(tmp_path / method)
        back = load_policy(tmp_path / method)
        obs = np.random.default_rng(0).random((4, 3, 2)).astype(np.float32)
        target = np.array([0.2, 0.5, 1.0]) if policy.conditioned else None
        acts = []
        for p in (policy, back):
            p.reset(3, target=target, seed=2)
            acts.append(np.stack([p.act(o) for o in obs]))
        assert np.array_equal(acts[0], acts[1])


def test_unknown_hyperparameters_are_rejected():
    with pytest.raises(ValidationError):
        make_method("condition", {"d_modle": 64})
    with pytest.raises(ValidationError):
        make_method("bc", {"condition": "rtg"})  # bc has no condition
    with pytest.raises(ValidationError):
        make_method("condition-mlp", {"attributes": ["colour"]})
