"""Grid expansion: pi_ref as an ordinary run, run identities, and the dependency schedule."""

from pathlib import Path

import pytest

from metatoken.errors import UserError
from metatoken.experiments.runs import Schedule, expand, reference_method
from metatoken.experiments.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
TINY = {"d_model": 16, "n_layers": 1, "context": 4}


def _spec(methods, seeds=(0, 1), **extra):
    return parse_spec({
        "name": "g", "seeds": list(seeds),
        "tasks": [{"id": "glitchgrid-teleport", "options": {"summit_distance": 4}}],
        "methods": methods, **extra,
    })


def test_mountain_reference_is_the_grid_bc_run_of_each_task():
    spec = load_spec(ROOT / "specs" / "mountain.yaml")
    runs = expand(spec)
    assert len(runs) == len(spec.tasks) * len(spec.methods) * len(spec.seeds)  # no extra pi_ref training
    assert all(r.in_grid for r in runs)
    for r in runs:
        assert r.reference == f"{r.task_name}__bc__seed0"
        assert r.depends_on == (() if r.method_name == "bc" and r.seed == 0 else (r.reference,))
    assert all("reference_hyperparameters" not in r.to_json() for r in runs)


def test_spec_without_bc_gets_one_extra_default_bc_reference_run_per_task():
    runs = expand(_spec([{"id": "condition", "hyperparameters": TINY}]))
    ref = runs[0]
    assert (ref.run_id, ref.method_id, ref.hyperparameters, ref.seed, ref.in_grid) == (
        "glitchgrid-teleport__reference__seed0", "bc", {}, 0, False)
    assert [r.reference for r in runs] == [ref.run_id] * 3
    assert [r.in_grid for r in runs[1:]] == [True, True]


def test_bc_without_seed_0_is_not_the_reference():
    runs = expand(_spec([{"id": "bc", "hyperparameters": TINY}], seeds=(1, 2)))
    assert [r.run_id for r in runs] == ["glitchgrid-teleport__reference__seed0", "glitchgrid-teleport__bc__seed1",
                                        "glitchgrid-teleport__bc__seed2"]
    assert runs[0].hyperparameters == TINY  # the spec's bc entry, trained at seed 0


def test_named_reference_matches_a_grid_run_with_the_same_training():
    spec = _spec([{"id": "bc"}, {"id": "condition", "hyperparameters": TINY}],
                 reference={"id": "condition", "hyperparameters": TINY})
    assert reference_method(spec).id == "condition"
    runs = expand(spec)
    assert len(runs) == 4 and {r.reference for r in runs} == {"glitchgrid-teleport__condition__seed0"}


def test_reference_entry_is_validated():
    with pytest.raises(UserError, match=r"reference.id: method 'nope' unknown"):
        _spec([{"id": "bc"}], reference={"id": "nope"})
    with pytest.raises(UserError, match=r"reference.hyperparameters.colour: unknown key"):
        _spec([{"id": "bc"}], reference={"id": "bc", "hyperparameters": {"colour": 1}})
    with pytest.raises(UserError, match="reserved"):
        _spec([{"id": "bc", "name": "reference"}])


def test_identity_changes_with_what_determines_the_run_and_with_pi_ref():
    base = {r.run_id: r.identity for r in expand(_spec([{"id": "bc"}, {"id": "condition"}]))}
    assert base == {r.run_id: r.identity for r in expand(_spec([{"id": "bc"}, {"id": "condition"}]))}
    steps = parse_spec({**_spec([{"id": "bc"}, {"id": "condition"}]).model_dump(), "budgets": {"gradient_steps": 7}})
    assert all(base[r.run_id] != r.identity for r in expand(steps))
    # a different pi_ref (bc's hyperparameters) changes every run that is measured against it
    other = {r.run_id: r.identity for r in expand(_spec([{"id": "bc", "hyperparameters": TINY},
                                                          {"id": "condition"}]))}
    assert other["glitchgrid-teleport__condition__seed1"] != base["glitchgrid-teleport__condition__seed1"]
    # a different seed set leaves the other runs' identities alone
    fewer = {r.run_id: r.identity for r in expand(_spec([{"id": "bc"}, {"id": "condition"}], seeds=(0,)))}
    assert all(base[k] == v for k, v in fewer.items())


def test_schedule_starts_pi_ref_first_and_holds_its_dependents():
    runs = expand(_spec([{"id": "condition"}, {"id": "bc"}]))  # pi_ref (bc seed 0) is third in grid order
    schedule = Schedule(runs)
    first = schedule.next_ready()
    assert first.run_id == "glitchgrid-teleport__bc__seed0"
    assert schedule.next_ready() is None  # everything else waits for pi_ref
    schedule.finish(first.run_id)
    rest = [schedule.next_ready() for _ in range(3)]
    assert [r.run_id for r in rest] == ["glitchgrid-teleport__condition__seed0",
                                        "glitchgrid-teleport__condition__seed1", "glitchgrid-teleport__bc__seed1"]
    assert schedule.next_ready() is None and not schedule


def test_schedule_without_pi_ref_in_the_batch_runs_everything():
    """--resume reused pi_ref: its dependents are ready at once."""
    runs = expand(_spec([{"id": "bc"}, {"id": "condition"}]))
    schedule = Schedule(runs[1:])
    assert len([schedule.next_ready() for _ in range(3)]) == 3


def test_per_method_budgets_reach_the_runs_and_pi_ref_keeps_its_own():
    runs = expand(_spec([{"id": "bc", "hyperparameters": TINY},
                         {"id": "ppo", "budgets": {"env_steps": 512}, "sweep": {"budgets.gradient_steps": [7, 9]}}],
                        seeds=(0,), budgets={"gradient_steps": 5}))
    by_name = {r.method_name: r for r in runs}
    assert by_name["bc"].budgets["env_steps"] == 0 and by_name["bc"].budgets["gradient_steps"] == 5
    assert by_name["ppo-gradient_steps=7"].budgets == {"env_steps": 512, "gradient_steps": 7, "eval_episodes": 20}
    assert by_name["ppo-gradient_steps=9"].budgets["gradient_steps"] == 9
    assert all(r.reference == "glitchgrid-teleport__bc__seed0" for r in runs) and len(runs) == 3


def test_a_bc_entry_with_other_budgets_than_the_reference_entry_is_not_pi_ref():
    runs = expand(_spec([{"id": "bc", "budgets": {"gradient_steps": 3}}], seeds=(0,), reference={"id": "bc"}))
    assert [r.method_name for r in runs] == ["reference", "bc"]
    assert runs[0].budgets["gradient_steps"] == 1000 and runs[1].budgets["gradient_steps"] == 3
