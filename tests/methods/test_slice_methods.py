import numpy as np

from metatoken.methods import Budget, make_method
from metatoken.methods.base import NullLogger
from metatoken.methods.slice_mlp import MLPPolicy
from metatoken.evaluate.evaluate import command_levels, evaluate


def test_bc_and_condition_train_and_save(tmp_path, grid_task, grid_dataset):
    for method_id in ("bc", "condition"):
        trained = make_method(method_id).train(grid_task, grid_dataset, Budget(gradient_steps=300),
                                               0, NullLogger())
        assert trained.ledger.gradient_steps == 300 and trained.ledger.online_env_steps == 0
        out = tmp_path / method_id
        out.mkdir()
        trained.policy.save(out)
        back = MLPPolicy.load(out)
        obs = np.random.default_rng(0).random((5, 2)).astype(np.float32)
        target = np.full(5, 0.5) if trained.policy.conditioned else None
        for p in (trained.policy, back):
            p.reset(5, target=target, seed=1, deterministic=True)
        np.testing.assert_array_equal(trained.policy.act(obs), back.act(obs))


def test_condition_controls_the_return(grid_task, grid_dataset):
    trained = make_method("condition").train(grid_task, grid_dataset, Budget(gradient_steps=800),
                                             0, NullLogger())
    r = evaluate(grid_task, trained.policy, grid_dataset, episodes=30, seed=0)
    levels = command_levels(grid_dataset)
    means = [r.returns[r.target == lv].mean() for lv in levels]
    assert means[-1] > means[0] + 0.5  # commanding more gets more
