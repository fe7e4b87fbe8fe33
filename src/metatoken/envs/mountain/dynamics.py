"""Mountain dynamics: one pure, batched numpy step shared by the single and vectorised env.

The walker is a rigid torso (mass at the hip) with two massless telescoping legs. Each leg
has a hip angle (relative to the torso) and a length, both driven by rate servos; a passive
rotational spring-damper holds the torso upright. Feet touch
the terrain through penalty (spring-damper) contact with velocity-level Coulomb friction,
integrated with semi-implicit Euler at a coarse step. Every array carries a leading batch
axis B; nothing here holds state or randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# Integration
DT = 0.04  # s per env step (25 Hz); coarse on purpose, see the env's Exploits section
GRAVITY = 9.81  # m/s^2

# Body
MASS = 10.0  # kg, all of it in the torso (legs are massless)
INERTIA = 5.0  # kg m^2 about the hip; the torso carries a balancing pole (gyration radius 0.7 m)
# A passive rotational spring-damper pulls the torso upright (a ballast-and-gyro stabiliser
# standing in for a balance controller), so ordinary gaits are statically stable.
UPRIGHT_STIFFNESS = 400.0  # N m/rad
UPRIGHT_DAMPING = 90.0  # N m s/rad, about critical for INERTIA
LEG_MIN, LEG_MAX = 0.5, 1.1  # m, telescoping leg length limits
HIP_LIMIT = 1.2  # rad, hip angle limit either side of the torso's long axis
HIP_RATE = 6.0  # rad/s, hip servo speed at action +-1
EXT_RATE = 12.0  # m/s, leg extension servo speed at action +-1 (fast enough to slam a foot)

# Contact
STIFFNESS = 5000.0  # N/m, penalty spring per foot (static sink under full weight ~2 cm)
DAMPING = 300.0  # N s/m, penalty damper per foot
FRICTION = 1.0  # Coulomb coefficient
FRICTION_GAIN = 0.5  # share of a sticking foot's slip velocity friction cancels within one step
SLIP_SPEED = 1.0  # m/s, a foot slipping faster than this slides (full Coulomb friction)
# Audit: a contact step that leaves the torso faster than this (and faster than it would be
# without contact) was launched by the contact numerics. No gait moves this fast: walking tops
# out at 1.2 m/s and the hops of the clumsiest reference walker (skill 0) at 3.7 m/s.
LAUNCH_SPEED = 4.5  # m/s

# Terrain: smooth climb of SUMMIT_GRADE * summit_distance metres, flat after the summit
SUMMIT_GRADE = 0.1  # mean slope of the climb (the steepest point is 1.5x this)

# Episode
NOMINAL_HEIGHT = 0.85  # m, hip height above ground while walking
NOMINAL_SPEED = 1.0  # m/s, used only to scale the shaping terms
FALL_HEIGHT = 0.4  # m, torso below this height above ground counts as a fall
FALL_PITCH = 1.0  # rad, torso pitched beyond this counts as a fall
UPRIGHT_PITCH = 0.5  # rad, progress while pitched beyond this is not "walking"

# State layout: (B, STATE_DIM)
X, Y, PITCH, VX, VY, OMEGA = range(6)
HIP = slice(6, 8)  # hip angles of leg 0 and leg 1, rad
LEG = slice(8, 10)  # leg lengths, m
STATE_DIM = 10
OBS_DIM = 14  # see the env docstring's table
ACT_DIM = 4  # hip rate 0, hip rate 1, extension rate 0, extension rate 1 (each in [-1, 1])
REWARDS = ("sparse", "dense", "shaped")


@dataclass(frozen=True)
class MountainParams:
    """The env's knobs: reward variant, distance to the summit and shaping weight."""

    reward: str = "dense"
    summit_distance: float = 30.0  # m
    shaping_weight: float = 0.5

    def __post_init__(self):
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {self.reward!r}")
        if not self.summit_distance > 0:
            raise ValueError(f"summit_distance must be > 0 m, got {self.summit_distance}")


class StepOut(NamedTuple):
    """Everything one step produces besides the next state; each (B,) unless noted."""

    reward: np.ndarray
    terminated: np.ndarray  # bool: summit reached or fell
    summit: np.ndarray  # bool: crossed summit_distance this step
    fell: np.ndarray  # bool
    depth: np.ndarray  # (B, 2) foot penetration depth this step, m (0 when not touching)
    launch: np.ndarray  # bool: contact sped the torso up beyond LAUNCH_SPEED (the planted exploit)
    walked: np.ndarray  # eastward progress / summit_distance credited to walking (audit)


def terrain(x: np.ndarray, summit_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Ground height and slope at x: a smoothstep climb to the summit, flat beyond (and before 0)."""
    u = np.clip(x / summit_distance, 0.0, 1.0)
    height = SUMMIT_GRADE * summit_distance * u * u * (3.0 - 2.0 * u)
    slope = SUMMIT_GRADE * 6.0 * u * (1.0 - u)
    return height, slope


def initial_state(rng: np.random.Generator) -> np.ndarray:
    """One start state (STATE_DIM,): standing with the legs slightly apart, small random jitter."""
    s = np.zeros(STATE_DIM)
    s[X] = rng.uniform(0.0, 0.1)
    s[PITCH] = rng.uniform(-0.02, 0.02)
    s[VX] = rng.uniform(0.0, 0.1)
    s[HIP] = np.array([0.12, -0.12]) + rng.uniform(-0.02, 0.02, 2)
    s[LEG] = NOMINAL_HEIGHT / np.cos(s[HIP])
    s[Y] = NOMINAL_HEIGHT + 0.01  # feet just touching the flat start
    return s


def feet(state: np.ndarray, summit_distance: float):
    """Foot positions relative to the hip (B, 2) x2 and the ground under each foot."""
    angle = state[:, PITCH, None] + state[:, HIP]  # (B, 2) leg angle from the vertical
    length = state[:, LEG]  # (B, 2)
    rx, ry = length * np.sin(angle), -length * np.cos(angle)  # (B, 2)
    ground, slope = terrain(state[:, X, None] + rx, summit_distance)  # (B, 2)
    return rx, ry, ground, slope


def step(params: MountainParams, state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, StepOut]:
    """Advance B walkers by DT: (B, STATE_DIM), (B, ACT_DIM) -> next state and StepOut."""
    a = np.clip(action, -1.0, 1.0)  # (B, 4)
    s = state.copy()
    # Servos move the joints first; the feet then sit wherever the joints put them, even
    # below the ground: contact is only resolved afterwards, once per step.
    hip = np.clip(s[:, HIP] + DT * HIP_RATE * a[:, :2], -HIP_LIMIT, HIP_LIMIT)  # (B, 2)
    leg = np.clip(s[:, LEG] + DT * EXT_RATE * a[:, 2:], LEG_MIN, LEG_MAX)  # (B, 2)
    hip_rate, leg_rate = (hip - s[:, HIP]) / DT, (leg - s[:, LEG]) / DT  # (B, 2)
    s[:, HIP], s[:, LEG] = hip, leg

    rx, ry, ground, slope = feet(s, params.summit_distance)  # (B, 2) each
    hip_y = s[:, Y, None]  # (B, 1)
    sink = ground - (hip_y + ry)  # (B, 2) vertical penetration, m
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
    # Effective mass of each foot along the normal and the tangent (torso translation plus
    # rotation about the hip), shared among the feet that touch (Jacobi-style split).
    share = np.maximum(touching.sum(1, keepdims=True), 1)  # (B, 1)
    arm_n = rx * ny - ry * nx  # (B, 2) lever of a normal force about the hip (r x n)
    arm_t = -(rx * nx + ry * ny)  # (B, 2) lever of a tangential force about the hip (r x t)
    m_n = 1.0 / (1.0 / MASS + arm_n * arm_n / INERTIA) / share  # (B, 2) kg
    m_t = 1.0 / (1.0 / MASS + arm_t * arm_t / INERTIA) / share  # (B, 2) kg
    # Linearly implicit spring-damper: the force is the one the spring and damper would
    # exert at the end of the step (backward Euler), so walking contact is stable at DT.
    # It still removes all of the penetration within about one step, however deep it is.
    beta = (STIFFNESS * DT * DT + DAMPING * DT) / m_n  # (B, 2)
    push = STIFFNESS * depth - (STIFFNESS * DT + DAMPING) * vn + beta * m_n * GRAVITY * ny  # (B, 2)
    normal = np.where(touching, np.maximum(push / (1.0 + beta), 0.0), 0.0)  # (B, 2) N
    # Friction: a sticking foot has part of its slip cancelled within the step (stable at any
    # DT); a foot sliding faster than SLIP_SPEED gets full Coulomb friction for the whole step,
    # which (explicitly integrated) can overshoot far past zero slip when the normal is huge.
    stick = np.clip(-FRICTION_GAIN * m_t * vt / DT, -FRICTION * normal, FRICTION * normal)  # (B, 2)
    tangent = np.where(np.abs(vt) < SLIP_SPEED, stick, -FRICTION * normal * np.sign(vt))  # (B, 2)
    fx = normal * nx + tangent * ny  # (B, 2)
    fy = normal * ny - tangent * nx  # (B, 2)
    torque = (rx * fy - ry * fx).sum(1) - UPRIGHT_STIFFNESS * s[:, PITCH] - UPRIGHT_DAMPING * s[:, OMEGA]  # (B,)

    old_x = s[:, X].copy()
    s[:, VX] += DT * fx.sum(1) / MASS
    s[:, VY] += DT * (fy.sum(1) / MASS - GRAVITY)
    s[:, OMEGA] += DT * torque / INERTIA
    s[:, X] += DT * s[:, VX]
    s[:, Y] += DT * s[:, VY]
    s[:, PITCH] += DT * s[:, OMEGA]
    return s, _outcome(params, state, s, old_x, depth, touching)


def _outcome(params, before, s, old_x, depth, touching) -> StepOut:
    """Reward, termination and audit from the state before and after the step."""
    d = params.summit_distance
    progress = (s[:, X] - old_x) / d  # (B,)
    height = s[:, Y] - terrain(s[:, X], d)[0]  # (B,) hip height above the ground below it
    fell = (height < FALL_HEIGHT) | (np.abs(s[:, PITCH]) > FALL_PITCH)  # (B,)
    summit = (s[:, X] >= d) & ~fell  # (B,)
    launch = launched(before, s, touching)  # (B,)
    upright = np.abs(s[:, PITCH]) < UPRIGHT_PITCH  # (B,)
    walked = np.where(~launch & upright & touching.any(1), progress, 0.0)  # (B,)
    if params.reward == "sparse":
        reward = summit.astype(float)
    else:
        reward = progress.copy()
        if params.reward == "shaped":
            reward += params.shaping_weight * (gait_score(s, touching, height) - 1.0) * (
                NOMINAL_SPEED * DT / d)
    return StepOut(reward, summit | fell, summit, fell, depth, launch, walked)


def launched(before: np.ndarray, after: np.ndarray, touching: np.ndarray) -> np.ndarray:
    """The launch audit (B,) bool: a foot touched, and the contact left the torso faster than
    LAUNCH_SPEED and faster than it would have been without contact (gravity alone)."""
    speed = np.hypot(after[:, VX], after[:, VY])  # (B,)
    ballistic = np.hypot(before[:, VX], before[:, VY] - DT * GRAVITY)  # (B,) had no foot touched
    return touching.any(1) & (speed > LAUNCH_SPEED) & (speed > ballistic)


def gait_score(s: np.ndarray, touching: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Gait-likeness in [0, 1]: upright torso, nominal hip height, feet apart, a foot on the ground."""
    posture = np.exp(-(s[:, PITCH] / 0.2) ** 2)  # (B,)
    stature = np.exp(-((height - NOMINAL_HEIGHT) / 0.15) ** 2)  # (B,)
    spread = np.exp(-((np.abs(s[:, 6] - s[:, 7]) - 0.4) / 0.4) ** 2)  # (B,) legs scissor, not together
    support = touching.any(1).astype(float)  # (B,) walking never leaves the ground
    return posture * stature * spread * support


def observe(state: np.ndarray, summit_distance: float) -> np.ndarray:
    """Observation (B, OBS_DIM) float32 from the state; see the env docstring's table."""
    _, ry, ground, _ = feet(state, summit_distance)  # (B, 2)
    height, slope = terrain(state[:, X], summit_distance)  # (B,)
    _, slope_ahead = terrain(state[:, X] + 1.0, summit_distance)  # (B,) one metre ahead
    contact = (ground - (state[:, Y, None] + ry) > 0.0).astype(float)  # (B, 2)
    remaining = (summit_distance - state[:, X]) / summit_distance  # (B,)
    return np.concatenate([
        (state[:, Y] - height)[:, None], state[:, PITCH:PITCH + 1], state[:, VX:OMEGA + 1],
        state[:, HIP], state[:, LEG], contact, slope[:, None], slope_ahead[:, None], remaining[:, None],
    ], axis=1).astype(np.float32)  # (B, OBS_DIM)
