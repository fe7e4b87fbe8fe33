import math

import pytest

from metatoken.evaluate.measure.implementation import (
    implementation_shares,
    implementation_spread,
    label_entropy,
    reference_share,
)


def test_shares_and_reference_share_among_successes():
    labels = ["walk", "launch", "walk", "fall", "launch"]
    success = [True, True, False, False, True]
    assert implementation_shares(labels) == {"fall": 0.2, "launch": 0.4, "walk": 0.4}
    # among successes: walk, launch, launch -> walk 1/3 (over all episodes it would be 0.4)
    assert reference_share(labels, success) == pytest.approx(1 / 3)
    assert math.isnan(reference_share(labels, [False] * 5))


def test_label_entropy_bits():
    assert label_entropy(["walk"] * 4) == 0.0
    assert label_entropy(["walk", "hop", "walk", "hop"]) == pytest.approx(1.0)
    assert label_entropy(["a", "b", "c", "c"]) == pytest.approx(1.5)


def test_spread_separates_between_seed_from_within_seed_variety():
    # every seed mixes walk and hop equally: lots of variety, none of it between seeds
    mixed = implementation_spread([["walk", "hop"], ["hop", "walk"]])
    assert mixed == {"pooled": 1.0, "within": 1.0, "between": 0.0, "modal": 0.0}
    # each seed commits to one implementation: all of the variety is between seeds
    split = implementation_spread([["walk", "walk"], ["launch", "launch"], ["hop"], ["crawl"]])
    assert split["pooled"] == pytest.approx(2.0) and split["within"] == 0.0
    assert split["between"] == pytest.approx(2.0) and split["modal"] == pytest.approx(2.0)
