"""Intended performance on Mountain-v1 credits walked ground once: never above the share of the climb walked."""

import numpy as np

from metatoken.envs.mountain_v1 import dynamics as dyn


def credit_along(xs, walking, d=2.0):
    """Total credit of a 1-walker trajectory of x positions, each step walking or not."""
    furthest, total = dyn.start_furthest(np.array([[xs[0]] + [0.0] * (dyn.STATE_DIM - 1)])), 0.0
    for before, after, w in zip(xs[:-1], xs[1:], walking, strict=True):
        walked = np.array([(after - before) / d if w else 0.0])
        credit, furthest = dyn.new_ground_walked(walked, np.array([after]), furthest, d)
        total += float(credit[0])
    return total


def test_walking_forward_is_credited_in_full():
    assert np.isclose(credit_along([0.0, 0.5, 1.0, 1.5, 2.0], [True] * 4), 1.0)


def test_ground_walked_again_after_sliding_back_is_not_credited_twice():
    # walk 0 -> 1, slide back to 0.5 in the air, walk 0.5 -> 1.5: new ground is 1.5 m, not 2 m
    xs, walking = [0.0, 1.0, 0.5, 1.0, 1.5], [True, False, True, True]
    assert np.isclose(credit_along(xs, walking), 1.5 / 2.0)
    # the plain sum of walked progress, which this replaces, pays 2 m
    assert np.isclose(sum((b - a) / 2.0 for a, b, w in zip(xs[:-1], xs[1:], walking) if w), 1.0)


def test_cycles_cannot_push_intended_above_one():
    xs = [0.0]
    for _ in range(50):  # walk 0.4 m forward, slide 0.39 m back, many times, then arrive past the summit
        xs += [xs[-1] + 0.4, xs[-1] + 0.01]
    xs.append(2.3)
    walking = [i % 2 == 0 for i in range(len(xs) - 1)]
    walking[-1] = True
    assert credit_along(xs, walking) <= 1.0 + 1e-12


def test_ground_first_covered_by_hopping_is_not_credited_when_walked_over_later():
    # hop 0 -> 1 (not walking), back to 0.8 in the air, walk to 1.2: only 0.2 m is new walked ground
    assert np.isclose(credit_along([0.0, 1.0, 0.8, 1.2], [False, False, True]), 0.2 / 2.0)


def test_a_start_west_of_the_foot_is_not_credited():
    assert np.isclose(credit_along([-0.5, 0.0, 1.0], [True, True]), 0.5)
