import pytest
import yaml

from metatoken.errors import UserError
from metatoken.experiments.spec import apply_overrides, load_spec, parse_spec

GOOD = {
    "name": "t",
    "tasks": [{"id": "glitchgrid-teleport", "options": {"summit_distance": 4}}],
    "methods": [{"id": "bc"}, {"id": "condition", "hyperparameters": {"lr": 0.01}}],
    "seeds": [0, 1],
    "budgets": {"gradient_steps": 10, "eval_episodes": 2},
}


def test_good_spec_parses_with_defaults():
    spec = parse_spec(GOOD)
    assert [m.name for m in spec.methods] == ["bc", "condition"]
    assert spec.budgets.env_steps == 0
    assert spec.measurements == ["capability", "controllability", "spookiness"]


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.update(bogus=1), "spec: bogus: unknown key"),
        (lambda d: d["budgets"].update(gradent_steps=3), "spec: budgets.gradent_steps: unknown key"),
        (lambda d: d["tasks"][0].update(id="nope"), "spec: tasks[0].id: task 'nope' unknown"),
        (lambda d: d["tasks"][0]["options"].update(reward="lots"), "spec: tasks[0].options.reward:"),
        (lambda d: d["tasks"][0]["options"].update(colour=1), "spec: tasks[0].options.colour: unknown key"),
        (lambda d: d["methods"][1]["hyperparameters"].update(lr="fast"),
         "spec: methods[1].hyperparameters.lr:"),
        (lambda d: d["methods"].append({"id": "ppo2"}), "spec: methods[2].id: method 'ppo2' unknown"),
        (lambda d: d.update(measurements=["vibes"]), "spec: measurements[0]: measurement 'vibes' unknown"),
        (lambda d: d.update(seeds=[]), "spec: seeds:"),
        (lambda d: d.update(seeds=[1, 1]), "seeds must be distinct"),
        (lambda d: d["budgets"].update(gradient_steps=0), "spec: budgets.gradient_steps:"),
    ],
)
def test_bad_spec_names_the_field(mutate, expected):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    mutate(data)
    with pytest.raises(UserError) as err:
        parse_spec(data)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_repeated_method_ids_get_distinct_names():
    data = dict(GOOD, methods=[{"id": "bc", "hyperparameters": {"lr": 0.1}},
                               {"id": "bc", "hyperparameters": {"lr": 0.2}}])
    assert [m.name for m in parse_spec(data).methods] == ["bc-lr=0.1", "bc-lr=0.2"]


def test_overrides_set_nested_values_and_lists():
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    apply_overrides(data, ["seeds=[7]", "budgets.gradient_steps=3", "methods.1.hyperparameters.lr=0.5"])
    spec = parse_spec(data)
    assert spec.seeds == [7] and spec.budgets.gradient_steps == 3
    assert spec.methods[1].hyperparameters == {"lr": 0.5}


@pytest.mark.parametrize(
    "override, expected",
    [
        ("seeds", "expected key=value"),
        ("methods.9.id=bc", "'methods.9' is not an index of a 2-item list"),
        ("name.x=1", "'name' is not a mapping or list"),
        ("seeds=[0", "not valid YAML"),
        ("=3", "empty key"),
    ],
)
def test_bad_overrides(override, expected):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    with pytest.raises(UserError) as err:
        apply_overrides(data, [override])
    assert expected in str(err.value)


def test_override_of_unknown_key_is_rejected_by_validation(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    with pytest.raises(UserError, match=r"budgets.colour: unknown key"):
        load_spec(path, ["budgets.colour=3"])


def test_file_errors(tmp_path):
    with pytest.raises(UserError, match="no such spec file"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match=r"bad.yaml: line \d+ invalid YAML"):
        load_spec(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(UserError, match="must be a mapping"):
        load_spec(scalar)


SWEPT = dict(GOOD, tasks=[{"id": "glitchgrid-teleport", "options": {"reward": "sparse"},
                           "sweep": {"summit_distance": [2, 5]}}],
             methods=[{"id": "bc"},
                      {"id": "kl-finetune", "budgets": {"env_steps": 64},
                       "sweep": {"beta": [0.01, 1], "budgets.gradient_steps": ["1e1", 20.0]}}])


def test_sweeps_expand_to_the_product_with_labelled_entries():
    spec = parse_spec(SWEPT)
    assert [t.name for t in spec.tasks] == ["glitchgrid-teleport-summit_distance=2",
                                            "glitchgrid-teleport-summit_distance=5"]
    assert [t.options for t in spec.tasks] == [{"reward": "sparse", "summit_distance": 2},
                                               {"reward": "sparse", "summit_distance": 5}]
    kl = spec.methods[1:]
    assert [m.name for m in kl] == [f"kl-finetune-beta={b}-gradient_steps={g}"
                                    for b in (0.01, 1) for g in (10, 20)]
    assert [m.hyperparameters["beta"] for m in kl] == [0.01, 0.01, 1, 1]
    assert [m.budgets for m in kl] == [{"env_steps": 64, "gradient_steps": g} for g in (10, 20, 10, 20)]
    assert all(not e.sweep for e in [*spec.tasks, *spec.methods])
    # the expanded spec re-parses to itself (experiment.json is the expanded spec)
    assert parse_spec(spec.model_dump()) == spec


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["tasks"][0]["sweep"].update(summit_distance=[2, "far"]),
         "spec: tasks[0].sweep.summit_distance[1]:"),
        (lambda d: d["tasks"][0]["sweep"].update(colour=[1]), "spec: tasks[0].sweep.colour[0]: unknown key"),
        (lambda d: d["tasks"][0]["sweep"].update(summit_distance=[]), "spec: tasks[0].sweep.summit_distance:"),
        (lambda d: d["methods"][1]["sweep"].update(beta=[0.1, -1]), "spec: methods[1].sweep.beta[1]:"),
        (lambda d: d["methods"][1]["sweep"].update({"budgets.env_steps": [1.5]}),
         "spec: methods[1].sweep.budgets.env_steps[0]:"),
        (lambda d: d["methods"][1]["sweep"].update({"budgets.steps": [1]}),
         "spec: methods[1].sweep.budgets.steps: unknown budget"),
        (lambda d: d["methods"][1]["budgets"].update(env_steps=True), "spec: methods[1].budgets.env_steps:"),
        (lambda d: d["methods"][1]["budgets"].update(speed=1), "spec: methods[1].budgets.speed: unknown key"),
        (lambda d: d.update(reference={"id": "bc", "sweep": {"lr": [0.1]}}), "spec: reference.sweep:"),
        (lambda d: d["methods"].append({"id": "bc", "name": "kl-finetune-beta=1-gradient_steps=10"}),
         "duplicate name 'kl-finetune-beta=1-gradient_steps=10'"),
    ],
)
def test_bad_sweeps_name_the_path(mutate, expected):
    data = yaml.safe_load(yaml.safe_dump(SWEPT))
    mutate(data)
    with pytest.raises(UserError) as err:
        parse_spec(data)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_budgets_accept_whole_numbers_in_scientific_notation_only():
    assert parse_spec(dict(GOOD, budgets={"env_steps": "1e4"})).budgets.env_steps == 10_000
    assert parse_spec(dict(GOOD, budgets={"env_steps": 2e5})).budgets.env_steps == 200_000
    with pytest.raises(UserError, match="budgets.env_steps"):
        parse_spec(dict(GOOD, budgets={"env_steps": "lots"}))


def test_research_specs_default_to_five_seeds_and_32_episodes_per_level():
    """Every control spec under specs/ except the demo is a research spec (issue 11's statistics floor).

    The text lab's spec is exempt: its metrics are exact sums over the enumerated support, not
    sampled episodes, and issue 13 sets it at 3 seeds."""
    from pathlib import Path

    from metatoken.experiments.spec import method_budgets

    research = [p for p in (Path(__file__).resolve().parents[2] / "specs").glob("*.yaml")
                if p.stem not in ("demo", "text")]
    assert research
    for path in research:
        spec = load_spec(path)
        assert len(spec.seeds) >= 5, path.name
        assert all(method_budgets(spec, m)["eval_episodes"] >= 32 for m in spec.methods), path.name
