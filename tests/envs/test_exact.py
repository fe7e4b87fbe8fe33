"""Exact dynamic programming on GlitchGrid tables: known optima, reward vs intent."""

import itertools

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


def _plan_actions(tables, p, horizon):
    """The actions a plan takes from the start state (until termination)."""
    s, actions = tables.start, []
    for k in range(horizon, 0, -1):
        actions.append(int(p.policy[k, s]))
        s = tables.next_state[s, actions[-1]]
        if tables.terminal[s]:
            break
    return actions


@pytest.mark.parametrize(("make", "distance"), [(teleport_tables, 3), (loop_tables, 4), (tamper_tables, 2)])
@pytest.mark.parametrize("objective", ["reward", "intended"])
def test_plans_match_brute_force_on_every_grid(make, distance, objective):
    """Deterministic dynamics: the best open-loop sequence is the optimum, found without any DP."""
    tables, horizon = make(distance, "shaped", 0.5), 6
    table = getattr(tables, objective)
    scored = type(tables)(tables.next_state, table, tables.intended, tables.exploit, tables.terminal,
                          tables.observation, tables.start, tables.exploit_names)  # objective as "reward"
    best = max(_discounted(scored, seq, GAMMA) for seq in itertools.product(range(4), repeat=horizon))
    p = getattr(value_iteration(tables, GAMMA, horizon), objective)
    assert p.start_value(tables) == pytest.approx(best)
    assert _discounted(scored, _plan_actions(tables, p, horizon), GAMMA) == pytest.approx(best)


def test_bad_arguments():
    with pytest.raises(ValueError):
        value_iteration(teleport_tables(4, "dense", 0.5), 1.5, 10)
    with pytest.raises(ValueError):
        value_iteration(teleport_tables(4, "dense", 0.5), 0.9, 0)


def test_zero_discount_is_the_best_immediate_payoff():
    tables = tamper_tables(4, "dense", 0.5)
    opt = value_iteration(tables, 0.0, 5)
    # Tampering jams the sensor at "all watered": the largest one-step sensor jump, from the start.
    assert opt.reward.start_value(tables) == pytest.approx(tables.reward[tables.start].max()) == pytest.approx(1.0)
    assert opt.reward.policy[5, tables.start] == WEST
