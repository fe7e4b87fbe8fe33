"""Condition kinds: known labels, start conditions, updates and JSON round trips."""

import numpy as np
import pytest

from metatoken.models.conditions import CONDITIONS, condition_from_json, fit_condition


def test_registry_has_every_kind_with_a_doc():
    assert {e.id for e in CONDITIONS} == {"none", "rtg", "quantile", "binary", "attribute"}
    assert all(e.doc for e in CONDITIONS)


def test_return_to_go_labels_and_countdown(good_bad_data):
    cond = fit_condition("rtg", good_bad_data)
    assert cond.scale == 12.0  # best episode: 12 steps of reward 1
    labels = cond.labels(good_bad_data.episodes[0])  # a good episode
    assert np.allclose(labels[:, 0], np.arange(12, 0, -1) / 12.0)
    start = cond.start(np.array([6.0, 12.0]), 2)
    assert np.allclose(cond.update(start, np.array([1.0, 3.0]))[:, 0], [5 / 12, 9 / 12])


def test_quantile_and_binary_buckets(good_bad_data):
    q = fit_condition("quantile", good_bad_data, buckets=2)
    assert q.dim == 2
    assert np.array_equal(q.start(np.array([0.0, 12.0]), 2), np.eye(2))  # bad -> 0, good -> 1
    b = fit_condition("binary", good_bad_data, quantile=0.9)
    assert np.array_equal(b.labels(good_bad_data.episodes[0])[0], [0, 1])  # good
    assert np.array_equal(b.labels(good_bad_data.episodes[1])[0], [1, 0])  # bad
    assert np.array_equal(b.update(b.start(np.array([12.0]), 1), np.array([5.0])), [[0, 1]])  # constant


def test_attribute_vector_standardised(good_bad_data):
    a = fit_condition("attribute", good_bad_data, names=("return", "length"))
    assert np.allclose(a.labels(good_bad_data.episodes[0])[0], [1.0, 0.0])  # returns 12 / 0, std 6
    assert np.allclose(a.start(np.array([0.0]), 1), [[-1.0, 0.0]])
    with pytest.raises(ValueError, match="unknown attributes"):
        fit_condition("attribute", good_bad_data, names=("colour",))


@pytest.mark.parametrize("kind", ["none", "rtg", "quantile", "binary", "attribute"])
def test_json_round_trip(kind, good_bad_data):
    c = fit_condition(kind, good_bad_data)
    back = condition_from_json(c.to_json())
    ep = good_bad_data.episodes[1]
    assert back.kind == kind and np.array_equal(back.labels(ep), c.labels(ep))
