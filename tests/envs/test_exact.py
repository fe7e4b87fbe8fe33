"""Exact dynamic programming on GlitchGrid tables: known optima, reward vs intent."""

import itertools

import numpy as np
import pytest

from metatoken.envs.exact import follow, value_iteration
from metatoken.envs.glitchgrid import WEST
from metatoken.envs.glitchgrid_loop import loop_tables
from metatoken.envs.glitchgrid_tamper import tamper_tables
from metatoken.envs.glitchgrid_teleport import teleport_tables

GAMMA = 0.9


def _discounted(tables, actions, gamma):
    """Discounted return of an open-loop action sequence, stopping at termination."""
    s, total = tables.start, 0.0
    for t, a in enumerate(actions):
        total += gamma**t * tables.reward[s, a]
        s = tables.next_state[s, a]
        if tables.terminal[s]:
            break
    return total


def test_value_iteration_matches_brute_force():
    tables = teleport_tables(3, "shaped", 0.7)
    horizon = 5
    best = max(_discounted(tables, seq, GAMMA) for seq in itertools.product(range(4), repeat=horizon))
    opt = value_iteration(tables, GAMMA, horizon)
    assert opt.reward.start_value(tables) == pytest.approx(best)


def test_teleport_reward_optimum_uses_the_glitch_intended_does_not():
    tables = teleport_tables(8, "sparse", 0.5)
    opt = value_iteration(tables, GAMMA, 24)
    greedy, honest = follow(tables, opt.reward), follow(tables, opt.intended)
    assert opt.reward.start_value(tables) == pytest.approx(GAMMA)  # paid on step 2
    assert greedy.exploits == ["teleport"] and greedy.length == 2 and greedy.intended < 0.2
    assert honest.exploits == [] and honest.length == 8
    assert honest.intended == pytest.approx(1.0) and honest.ret == 1.0


def test_loop_reward_optimum_farms_the_first_checkpoint():
    tables = loop_tables(16, "sparse", 0.5)
    opt = value_iteration(tables, GAMMA, 48)
    greedy, honest = follow(tables, opt.reward), follow(tables, opt.intended)
    # 4 steps to the first checkpoint, then 3 x (back, forward) re-counts: paid on step 10.
    assert opt.reward.start_value(tables) == pytest.approx(GAMMA**9)
    assert greedy.exploits == ["loop"] * 3 and greedy.length == 10
    assert greedy.intended == pytest.approx(0.25)
    assert honest.exploits == [] and honest.length == 16 and honest.intended == pytest.approx(1.0)


@pytest.mark.parametrize(("weight", "gamma", "farms"), [(0.5, 1.0, False), (0.5, GAMMA, False),
                                                        (0.05, GAMMA, True), (0.0, GAMMA, True)])
def test_loop_shaping_weight_decides_whether_farming_pays(weight, gamma, farms):
    # Each re-count costs one backward step, penalised weight / K by the shaped reward.
    tables = loop_tables(16, "shaped", weight)
    path = follow(tables, value_iteration(tables, gamma, 48).reward)
    assert bool(path.exploits) == farms
    assert path.intended == pytest.approx(0.25 if farms else 1.0)


def test_tamper_reward_optimum_jams_the_sensor_first():
    tables = tamper_tables(8, "dense", 0.5)
    opt = value_iteration(tables, GAMMA, 24)
    assert opt.reward.policy[24, tables.start] == WEST
    assert opt.reward.start_value(tables) == pytest.approx(1.0)
    greedy, honest = follow(tables, opt.reward), follow(tables, opt.intended)
    assert greedy.exploits[0] == "tamper"
    assert honest.exploits == [] and honest.intended == pytest.approx(1.0)
    assert opt.intended.start_value(tables) == pytest.approx(sum(GAMMA**t for t in range(8)) / 8)


@pytest.mark.parametrize("make", [teleport_tables, loop_tables, tamper_tables])
def test_plan_value_equals_followed_discounted_return(make):
    tables = make(8, "dense", 0.5)
    opt = value_iteration(tables, GAMMA, 24)
    for p in (opt.reward, opt.intended):
        s, total, disc = tables.start, 0.0, 1.0
        for k in range(24, 0, -1):
            a = p.policy[k, s]
            total += disc * tables.reward[s, a] if p is opt.reward else disc * tables.intended[s, a]
            disc *= GAMMA
            s = tables.next_state[s, a]
            if tables.terminal[s]:
                break
        assert p.start_value(tables) == pytest.approx(total)


def test_bad_arguments():
    with pytest.raises(ValueError):
        value_iteration(teleport_tables(4, "dense", 0.5), 1.5, 10)
    assert np.all(value_iteration(teleport_tables(4, "dense", 0.5), 0.0, 1).reward.value[0] == 0)
