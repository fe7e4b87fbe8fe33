"""Reference controller for Mountain-v0: a phase oscillator with PD-tracked foot targets.

Each leg alternates stance (the foot sweeps backwards under the hip at ground level) and
swing (the foot lifts and moves ahead to a Raibert-style touchdown point). Foot targets are
turned into hip-angle and leg-length targets, which the rate servos track with a P law.
Skill sets the walking speed (20% to 100% of TOP_SPEED) and the default action noise
(Gaussian, seeded). It never slams a leg: extension rates are capped at 2.4 m/s, a fifth
of what the launch exploit uses.
"""

from __future__ import annotations

import numpy as np

from metatoken.envs.mountain import dynamics as dyn
from metatoken.envs.scripted import ScriptedPolicy

PERIOD = 0.8  # s, one full gait cycle
DUTY = 0.6  # share of the cycle a leg is in stance (so both feet share weight for a while)
CLEARANCE = 0.08  # m, swing-foot lift at mid-swing
TOP_SPEED = 1.2  # m/s, walking speed at skill 1
SPEED_GAIN = 0.15  # s, touchdown shift per m/s of speed error (Raibert foot placement)
HEIGHT_GAIN = 1.0  # leg length correction per metre of hip height error
SERVO_GAIN = 0.5  # share of the tracking error a servo closes within one step
NOISE_SCALE = np.array([1.0, 1.0, 0.15, 0.15])  # per action: hip, hip, extension, extension
MAX_EXTENSION = 0.2  # cap on |extension action|: at most 2.4 m/s, far from a slam


def _smooth(u: np.ndarray) -> np.ndarray:
    return u * u * (3.0 - 2.0 * u)


class MountainWalker(ScriptedPolicy):
    """Scripted walker at a given skill (0..1) with Gaussian action noise; batched Policy."""

    def __init__(self, skill: float = 1.0, noise: float | None = None):
        if not 0.0 <= skill <= 1.0:
            raise ValueError(f"skill must be in [0, 1], got {skill}")
        super().__init__(float(skill))
        self.noise = 0.05 + 0.1 * (1.0 - skill) if noise is None else float(noise)
        self._phase = np.zeros(0)

    def reset(self, num_envs, *, target=None, seed=0, deterministic=False):
        """Start every environment's gait cycle at phase 0 and seed the noise."""
        super().reset(num_envs, target=target, seed=seed, deterministic=deterministic)
        self._phase = np.zeros(num_envs)  # (B,) in [0, 1): leg 0 starts its stance

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions (B, 4) tracking this phase's foot targets (relative to the hip, world frame)."""
        obs = np.asarray(obs, dtype=float)
        height, pitch, vx, omega = obs[:, 0:1], obs[:, 1:2], obs[:, 2:3], obs[:, 4:5]  # (B, 1)
        hip, leg, slope = obs[:, 5:7], obs[:, 7:9], obs[:, 11:12]  # (B, 2), (B, 2), (B, 1)
        speed = (0.2 + 0.8 * self.skill) * TOP_SPEED
        stride = speed * PERIOD * DUTY  # m the foot sweeps backwards during stance
        phase = (self._phase[:, None] + np.array([0.0, 0.5])) % 1.0  # (B, 2) per leg
        stance = phase < DUTY  # (B, 2)
        u_stance = phase / DUTY  # (B, 2) 0 -> 1 through stance
        u_swing = np.clip((phase - DUTY) / (1.0 - DUTY), 0.0, 1.0)  # (B, 2) 0 -> 1 through swing
        touchdown = stride / 2 + SPEED_GAIN * (speed - vx)  # (B, 1) reach further when slow
        fx = np.where(stance, stride / 2 - stride * u_stance,
                      -stride / 2 + (touchdown + stride / 2) * _smooth(u_swing))  # (B, 2)
        lift = np.where(stance, 0.0, CLEARANCE * np.sin(np.pi * u_swing))  # (B, 2)
        sag = np.where(stance, HEIGHT_GAIN * (dyn.NOMINAL_HEIGHT - height), 0.0)  # (B, 2)
        fy = -dyn.NOMINAL_HEIGHT + slope * fx + lift - sag  # (B, 2) ground rises under a forward foot
        gain = SERVO_GAIN / dyn.DT  # 1/s
        # Hip angles are measured from the torso: cancel its rotation so feet keep their course.
        hip_rate = gain * (np.arctan2(fx, -fy) - pitch - hip) - omega  # (B, 2) rad/s
        leg_rate = gain * (np.hypot(fx, fy) - leg)  # (B, 2) m/s
        action = np.concatenate([hip_rate / dyn.HIP_RATE, leg_rate / dyn.EXT_RATE], 1)  # (B, 4)
        if not self._deterministic:  # extension noise is damped: a jittering stance leg bounces
            action = action + self.noise * NOISE_SCALE * self._rng.standard_normal(action.shape)
        action[:, 2:] = np.clip(action[:, 2:], -MAX_EXTENSION, MAX_EXTENSION)
        self._phase = (self._phase + dyn.DT / PERIOD) % 1.0
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def observe(self, reward, done) -> None:
        """Restart the gait cycle of environments whose episode just ended."""
        self._phase = np.where(np.asarray(done, bool), 0.0, self._phase)
