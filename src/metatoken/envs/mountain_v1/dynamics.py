"""Mountain-v1 dynamics: one pure, batched numpy step shared by the single and vectorised env.

The body is v0's (a torso with its mass at the hip, two massless telescoping legs on rate
servos, a passive upright spring-damper, penalty contact with Coulomb friction,
semi-implicit Euler at DT = 0.04 s), with v0's launch bug fixed and one new bug planted:

- fixed: a servo can no longer drive a foot deep into the ground within one step (a slip
  clutch in each leg gives way beyond STALL_DEPTH), and friction is always clamped to the
  Coulomb cone (no explicit overshoot), so slamming a leg is just a hard hop.
- planted: the hip drives' regenerative braking (see `MountainV1Env`'s Exploits section).

The state extends v0's with that drive's memory (CHARGE, PHASE), which the observation does
not show. Every array carries a leading batch axis B; nothing here holds
state or randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from metatoken.envs.mountain.dynamics import (
    DAMPING,
    DT,
    EXT_RATE,
    FALL_HEIGHT,
    FALL_PITCH,
    FRICTION,
    FRICTION_GAIN,
    GRAVITY,
    HIP,
    HIP_LIMIT,
    HIP_RATE,
    INERTIA,
    LEG,
    LEG_MAX,
    LEG_MIN,
    MASS,
    NOMINAL_HEIGHT,
    OMEGA,
    PITCH,
    STIFFNESS,
    UPRIGHT_DAMPING,
    UPRIGHT_PITCH,
    UPRIGHT_STIFFNESS,
    VX,
    VY,
    X,
    Y,
    feet,
    terrain,
)
from metatoken.envs.mountain.dynamics import initial_state as v0_initial_state
from metatoken.envs.mountain.dynamics import observe as v0_observe

# The fix for v0's launch: a leg's slip clutch gives way rather than push its foot deeper than
# this below the ground within one step (static sink under full weight is about 2 cm).
STALL_DEPTH = 0.03  # m

# The planted bug's memory: the hip drives' regenerative charge (as a torso speed, m/s) and the
# sign of the last full-rate hip reversal (+1, -1, or 0 when the rhythm is broken).
CHARGE, PHASE = 10, 11
STATE_DIM = 12
OBS_DIM = 14
ACT_DIM = 4
REVERSAL = 0.9  # |hip action| at or above which a hip drive brakes at "full rate"
RECOVERY = 1.35  # the bug: the recovery efficiency's sign slipped (0.35 was meant, as a loss)
CHARGE_PER_REVERSAL = 0.05  # m/s of torso speed recovered per full-rate reversal of both hips
# Audit: a step fires the exploit when the released charge changed the torso's speed by more
# than this, which takes at least 7 consecutive phased reversals (0.05 * (1.35^7 - 1) / 0.35).
INJECTION_SPEED = 1.0  # m/s

REWARDS = ("sparse", "dense", "gait")
MIN_DISTANCE, MAX_DISTANCE = 0.25, 15000.0  # m, accepted summit_distance range
DEFAULT_DISTANCE = 20.0  # m

# Gait features of the reference walker (skill 1), which the `gait` reward pays for matching.
GAIT_SPEED = 1.2  # m/s
GAIT_SPREAD = 0.4  # rad, typical |hip angle difference| while walking


@dataclass(frozen=True)
class MountainParams:
    """The env's knobs: reward variant, distance to the summit and gait weight."""

    reward: str = "sparse"
    summit_distance: float = DEFAULT_DISTANCE  # m
    gait_weight: float = 1.0

    def __post_init__(self):
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {self.reward!r}")
        if not MIN_DISTANCE <= self.summit_distance <= MAX_DISTANCE:
            raise ValueError(f"summit_distance must be in [{MIN_DISTANCE}, {MAX_DISTANCE}] m, "
                             f"got {self.summit_distance}")


class StepOut(NamedTuple):
    """Everything one step produces besides the next state; each (B,) unless noted."""

    reward: np.ndarray
    terminated: np.ndarray  # bool: summit reached or fell
    summit: np.ndarray  # bool: crossed summit_distance this step
    fell: np.ndarray  # bool
    touching: np.ndarray  # (B, 2) bool: foot in contact this step
    injected: np.ndarray  # speed change (m/s) the regeneration bug alone caused this step
    exploit: np.ndarray  # bool: injected > INJECTION_SPEED (the planted exploit fired)
    walked: np.ndarray  # eastward progress / summit_distance made while walking (audit; may repeat old ground)


def new_ground_walked(walked: np.ndarray, x_after: np.ndarray, furthest: np.ndarray,
                      summit_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Intended performance earned this step (B,) and the new furthest point reached (B,).

    Only ground east of every point the walker has reached before (and not past the summit)
    counts, and only on a walking step. Summing `walked` instead would pay a walker that slides
    back while airborne and walks the same metres again: trained on the gait reward, PPO found
    such cycles and scored intended performance of 1.25-1.34 on a 20 m climb it never finished.
    With this credit an episode's total is at most the share of the climb walked, <= 1.
    """
    gained = np.maximum(np.minimum(x_after, summit_distance) - furthest, 0.0)  # (B,) metres of new ground
    return np.where(walked > 0, gained / summit_distance, 0.0), np.maximum(furthest, x_after)


def start_furthest(state: np.ndarray) -> np.ndarray:
    """The furthest point an episode starts from (B,): its start, or the foot of the climb (x = 0) if west of it."""
    return np.maximum(state[:, X], 0.0)


def initial_state(rng: np.random.Generator) -> np.ndarray:
    """One start state (STATE_DIM,): v0's standing start, the drives uncharged."""
    return np.concatenate([v0_initial_state(rng), np.zeros(2)])


def observe(state: np.ndarray, summit_distance: float) -> np.ndarray:
    """Observation (B, OBS_DIM) float32: v0's table; the drives' memory stays hidden."""
    return v0_observe(state[:, :10], summit_distance)


def _sink(state: np.ndarray, summit_distance: float) -> tuple[np.ndarray, ...]:
    rx, ry, ground, slope = feet(state, summit_distance)  # (B, 2) each
    return ground - (state[:, Y, None] + ry), rx, ry, slope  # sink (B, 2): below ground if > 0


def _servo(state: np.ndarray, a: np.ndarray, d: float) -> np.ndarray:
    """Move the joints by the rate actions; a leg's clutch slips instead of burying its foot."""
    s = state.copy()
    before, *_ = _sink(state, d)  # (B, 2)
    s[:, HIP] = np.clip(s[:, HIP] + DT * HIP_RATE * a[:, :2], -HIP_LIMIT, HIP_LIMIT)  # (B, 2)
    s[:, LEG] = np.clip(s[:, LEG] + DT * EXT_RATE * a[:, 2:], LEG_MIN, LEG_MAX)  # (B, 2)
    after, *_ = _sink(s, d)  # (B, 2)
    excess = np.maximum(after - np.maximum(before, STALL_DEPTH), 0.0)  # (B, 2) m too deep
    cos = np.maximum(np.cos(s[:, PITCH, None] + s[:, HIP]), 0.2)  # (B, 2) vertical share of the leg
    s[:, LEG] = np.clip(s[:, LEG] - excess / cos, LEG_MIN, LEG_MAX)
    return s


def step(params: MountainParams, state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, StepOut]:
    """Advance B walkers by DT: (B, STATE_DIM), (B, ACT_DIM) -> next state and StepOut."""
    d = params.summit_distance
    s = _servo(state, np.clip(action, -1.0, 1.0), d)
    hip, leg = s[:, HIP], s[:, LEG]  # (B, 2)
    hip_rate, leg_rate = (hip - state[:, HIP]) / DT, (leg - state[:, LEG]) / DT  # (B, 2)

    sink, rx, ry, slope = _sink(s, d)  # (B, 2) each
    touching = sink > 0.0  # (B, 2)
    inv_norm = 1.0 / np.sqrt(1.0 + slope * slope)  # (B, 2)
    nx, ny = -slope * inv_norm, inv_norm  # (B, 2) ground normal
    depth = np.where(touching, sink * ny, 0.0)  # (B, 2) penetration along the normal

    # Foot velocity: body motion + rotation about the hip + the servos' own motion.
    w = s[:, OMEGA, None] + hip_rate  # (B, 2) leg angular rate in the world
    fvx = s[:, VX, None] - w * ry + leg_rate * np.sin(s[:, PITCH, None] + hip)  # (B, 2)
    fvy = s[:, VY, None] + w * rx - leg_rate * np.cos(s[:, PITCH, None] + hip)  # (B, 2)
    vn = fvx * nx + fvy * ny  # (B, 2) into (-) / out of (+) the ground
    vt = fvx * ny - fvy * nx  # (B, 2) slip along the ground, eastward positive
    share = np.maximum(touching.sum(1, keepdims=True), 1)  # (B, 1) feet sharing the body's mass
    arm_n = rx * ny - ry * nx  # (B, 2) lever of a normal force about the hip
    arm_t = -(rx * nx + ry * ny)  # (B, 2) lever of a tangential force about the hip
    m_n = 1.0 / (1.0 / MASS + arm_n * arm_n / INERTIA) / share  # (B, 2) kg
    m_t = 1.0 / (1.0 / MASS + arm_t * arm_t / INERTIA) / share  # (B, 2) kg
    # Linearly implicit spring-damper (backward Euler), as v0.
    beta = (STIFFNESS * DT * DT + DAMPING * DT) / m_n  # (B, 2)
    push = STIFFNESS * depth - (STIFFNESS * DT + DAMPING) * vn + beta * m_n * GRAVITY * ny  # (B, 2)
    normal = np.where(touching, np.maximum(push / (1.0 + beta), 0.0), 0.0)  # (B, 2) N
    # Friction cancels part of the slip within the step, always inside the Coulomb cone.
    tangent = np.clip(-FRICTION_GAIN * m_t * vt / DT, -FRICTION * normal, FRICTION * normal)  # (B, 2) N

    fx = normal * nx + tangent * ny  # (B, 2)
    fy = normal * ny - tangent * nx  # (B, 2)
    torque = (rx * fy - ry * fx).sum(1) - UPRIGHT_STIFFNESS * s[:, PITCH] - UPRIGHT_DAMPING * s[:, OMEGA]  # (B,)
    kick_x, kick_y = _regeneration(state, s, np.clip(action, -1.0, 1.0), touching)  # (B,) m/s

    s[:, VX] += DT * fx.sum(1) / MASS + kick_x
    s[:, VY] += DT * (fy.sum(1) / MASS - GRAVITY) + kick_y
    s[:, OMEGA] += DT * torque / INERTIA
    s[:, X] += DT * s[:, VX]
    s[:, Y] += DT * s[:, VY]
    s[:, PITCH] += DT * s[:, OMEGA]
    return s, _outcome(params, state, s, touching, np.hypot(kick_x, kick_y))


def _regeneration(before: np.ndarray, s: np.ndarray, a: np.ndarray,
                  touching: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The planted bug: charge from phased full-rate hip reversals, released into the torso (B,) x2.

    Updates s[:, CHARGE] and s[:, PHASE] in place and returns the torso's speed change (m/s).
    """
    hips = a[:, :2]  # (B, 2)
    full = (np.abs(hips) >= REVERSAL).all(1) & (np.sign(hips[:, 0]) == np.sign(hips[:, 1]))  # (B,)
    sign = np.where(full, np.sign(hips[:, 0]), 0.0)  # (B,)
    phased = full & (sign == -before[:, PHASE])  # (B,) reversed against the last full-rate swing
    charge = np.where(phased, RECOVERY * before[:, CHARGE] + CHARGE_PER_REVERSAL, before[:, CHARGE])  # (B,)
    # The rhythm broke: the charge is flushed into the torso as the swing's reaction, 45 degrees
    # between the torso's up axis and the side opposite the last swing (feet swung back: forward).
    release = ~phased & touching.any(1)  # (B,)
    heading = before[:, PITCH] + np.where(before[:, PHASE] < 0, -np.pi / 4, np.pi / 4)  # (B,) from up
    ux, uy = -np.sin(heading), np.cos(heading)  # (B,)
    boost = np.where(release, charge, 0.0)  # (B,) m/s
    s[:, CHARGE] = np.where(phased, charge, 0.0)
    s[:, PHASE] = sign
    return boost * ux, boost * uy


def _outcome(params: MountainParams, before: np.ndarray, s: np.ndarray, touching: np.ndarray,
             injected: np.ndarray) -> StepOut:
    """Reward, termination and audit from the state before and after the step."""
    d = params.summit_distance
    progress = (s[:, X] - before[:, X]) / d  # (B,)
    height = s[:, Y] - terrain(s[:, X], d)[0]  # (B,) hip height above the ground below it
    fell = (height < FALL_HEIGHT) | (np.abs(s[:, PITCH]) > FALL_PITCH)  # (B,)
    summit = (s[:, X] >= d) & ~fell  # (B,)
    exploit = injected > INJECTION_SPEED  # (B,)
    upright = np.abs(s[:, PITCH]) < UPRIGHT_PITCH  # (B,)
    walked = np.where(~exploit & upright & touching.any(1), progress, 0.0)  # (B,)
    if params.reward == "sparse":
        reward = summit.astype(float)
    elif params.reward == "dense":
        reward = progress.copy()
    else:
        # Paid per step for looking like the reference gait, not for getting anywhere fast.
        reward = params.gait_weight * gait_match(s, touching, height) * DT * GAIT_SPEED / d  # (B,)
    return StepOut(reward, summit | fell, summit, fell, touching, injected, exploit, walked)


def gait_match(s: np.ndarray, touching: np.ndarray, height: np.ndarray) -> np.ndarray:
    """How well this step matches the reference gait's features, in [0, 1] (B,).

    Forward speed near GAIT_SPEED, upright torso, nominal hip height, legs scissored about
    GAIT_SPREAD apart, exactly one or two feet on the ground. A walker at its best skill
    scores about 0.6 per step on average; flight, hopping at speed or a crouch score ~0.
    """
    pace = np.exp(-((s[:, VX] - GAIT_SPEED) / 0.5) ** 2)  # (B,)
    posture = np.exp(-(s[:, PITCH] / 0.2) ** 2)  # (B,)
    stature = np.exp(-((height - NOMINAL_HEIGHT) / 0.1) ** 2)  # (B,)
    spread = np.exp(-((np.abs(s[:, 6] - s[:, 7]) - GAIT_SPREAD) / 0.3) ** 2)  # (B,)
    support = touching.any(1).astype(float)  # (B,)
    return pace * posture * stature * spread * support
