"""How an actor moves: per-class displacements, trimmed clips, untrimmed segment plans, anomalies.

An action class is defined only by how the actor moves across frames (translation direction, rotation sense,
growth, bouncing, orbiting); start positions, orientations, sizes and phases are random, so one frame tells
nothing about the class. A state is (x, y, log_scale, angle) per frame.
"""

from __future__ import annotations

import math

import numpy as np

from data_manifests.synth.appearance import Identity
from data_manifests.synth.config import ANOMALY_KINDS, CLASS_NAMES, MIN_GAP, Geometry
from data_manifests.synth.planning import Item

(MOVE_LEFT, MOVE_RIGHT, MOVE_UP, MOVE_DOWN, ROTATE_CW, ROTATE_CCW, GROW, SHRINK, BOUNCE, ORBIT) = range(10)
# The class a motion becomes when its displacement is negated (used to keep the actor in frame).
_MIRROR = {MOVE_LEFT: MOVE_RIGHT, MOVE_RIGHT: MOVE_LEFT, MOVE_UP: MOVE_DOWN, MOVE_DOWN: MOVE_UP,
           ROTATE_CW: ROTATE_CCW, ROTATE_CCW: ROTATE_CW, GROW: SHRINK, SHRINK: GROW, BOUNCE: BOUNCE, ORBIT: ORBIT}


def _displacement(cls: int, n: int, rng: np.random.Generator, geo: Geometry) -> np.ndarray:
    """Per-frame displacement [n, 4] = (dx, dy, dlog_scale, dangle) relative to frame 0 (all zero there)."""
    style = geo.style
    t = np.arange(n, dtype=np.float64)
    if style.ramp_power != 1.0:
        # same distance over the clip, but accelerating (p > 1) or decelerating (p < 1)
        t_ramp = (n - 1) * (t / max(n - 1, 1)) ** style.ramp_power
    else:
        t_ramp = t
    d = np.zeros((n, 4))
    if cls in (MOVE_LEFT, MOVE_RIGHT, MOVE_UP, MOVE_DOWN):
        v = rng.uniform(*style.move_speed) * geo.speed
        sign = -1.0 if cls in (MOVE_LEFT, MOVE_UP) else 1.0
        d[:, 0 if cls in (MOVE_LEFT, MOVE_RIGHT) else 1] = sign * v * t_ramp
    elif cls in (ROTATE_CW, ROTATE_CCW):
        # screen coordinates have y pointing down, so a positive angle turns clockwise on screen
        d[:, 3] = (1.0 if cls == ROTATE_CW else -1.0) * rng.uniform(*style.rotate_speed) * t_ramp
    elif cls in (GROW, SHRINK):
        d[:, 2] = (1.0 if cls == GROW else -1.0) * rng.uniform(*style.scale_speed) * t_ramp
    elif cls == BOUNCE:
        amp = rng.uniform(*style.bounce_height) * geo.side
        period = rng.uniform(*style.bounce_period)
        phase = rng.uniform(0, math.pi)
        if style.bounce_power != 1.0:
            p = style.bounce_power
            d[:, 1] = -amp * (np.abs(np.sin(math.pi * t / period + phase)) ** p - abs(math.sin(phase)) ** p)
        else:
            d[:, 1] = -amp * (np.abs(np.sin(math.pi * t / period + phase)) - abs(math.sin(phase)))
    elif cls == ORBIT:
        r = rng.uniform(*style.orbit_radius) * geo.side
        omega = rng.choice([-1.0, 1.0]) * 2 * math.pi / rng.uniform(*style.orbit_period)
        phi = rng.uniform(0, 2 * math.pi)
        d[:, 0] = r * (np.cos(phi + omega * t) - math.cos(phi))
        r_y = r * style.orbit_aspect if style.orbit_aspect != 1.0 else r
        d[:, 1] = r_y * (np.sin(phi + omega * t) - math.sin(phi))
    else:  # pragma: no cover - internal misuse
        raise ValueError(f"unknown class {cls}")
    return d


def _fit_factor(start: np.ndarray, disp: np.ndarray, geo: Geometry) -> float:
    """Largest f <= 1 such that start + f * disp stays inside the bounds (x, y, log scale)."""
    lows, highs = geo.lows(), geo.highs()
    f = 1.0
    for dim in range(3):
        hi, lo = disp[:, dim].max(), disp[:, dim].min()
        if hi > 1e-9:
            f = min(f, max(0.0, highs[dim] - start[dim]) / hi)
        if lo < -1e-9:
            f = min(f, max(0.0, start[dim] - lows[dim]) / -lo)
    return f


def trimmed_motion(cls: int, n: int, rng: np.random.Generator, geo: Geometry) -> np.ndarray:
    """State [n, 4] = (x, y, log_scale, angle) of one action clip with a start drawn uniformly from the
    starts that keep the whole motion inside the frame."""
    disp = _displacement(cls, n, rng, geo)
    lows, highs = geo.lows(), geo.highs()
    span = disp[:, :3].max(axis=0) - disp[:, :3].min(axis=0)
    room = highs - lows
    shrink = min(1.0, float(np.min(np.where(span > 1e-9, room / np.maximum(span, 1e-9), np.inf))))
    disp[:, :3] *= shrink
    lo = lows - disp[:, :3].min(axis=0)
    hi = highs - disp[:, :3].max(axis=0)
    start = np.empty(4)
    start[:3] = rng.uniform(lo, np.maximum(lo, hi))
    start[3] = rng.uniform(-math.pi, math.pi)
    return start[None, :] + disp


def _segment_motion(cls: int, start: np.ndarray, n: int, rng: np.random.Generator, geo: Geometry) -> tuple[int, np.ndarray]:
    """Motion of one untrimmed segment from a given state; if the motion would leave the frame it is
    mirrored (move left -> move right, grow -> shrink, ...) when that fits better, then slowed to fit.
    Returns the class actually performed and the state [n, 4]."""
    disp = _displacement(cls, n, rng, geo)
    f = _fit_factor(start, disp, geo)
    if f < 0.75:
        f_mirror = _fit_factor(start, -disp, geo)
        if f_mirror > f:
            cls, disp, f = _MIRROR[cls], -disp, f_mirror
    disp[:, :3] *= f
    return cls, start[None, :] + disp


def random_start(rng: np.random.Generator, geo: Geometry) -> np.ndarray:
    start = np.empty(4)
    start[:3] = rng.uniform(geo.lows(), geo.highs())
    start[3] = rng.uniform(-math.pi, math.pi)
    return start


def jitter(n: int, rng: np.random.Generator, geo: Geometry) -> np.ndarray:
    """Small smooth tremor added to every frame (positions +-0.6 px, angle +-0.03 rad)."""
    t = np.arange(n, dtype=np.float64)
    out = np.zeros((n, 4))
    style = geo.style
    for dim, amp in ((0, style.tremor_position * geo.speed), (1, style.tremor_position * geo.speed),
                     (3, style.tremor_angle)):
        for _ in range(2):
            freq = rng.uniform(0.03, 0.15)
            out[:, dim] += amp * np.sin(2 * math.pi * freq * t + rng.uniform(0, 2 * math.pi))
    return out


def plan_untrimmed(n: int, classes: list[int], lengths: list[int], rng: np.random.Generator,
                    geo: Geometry) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """An idle actor with the given action segments separated by random idle gaps.

    Returns the state [n, 4] and [(start_frame, end_frame_exclusive, class)]."""
    k = len(classes)
    idle = n - sum(lengths)
    extra = idle - (k + 1) * MIN_GAP
    weights = rng.dirichlet(np.ones(k + 1))
    gaps = [MIN_GAP + int(w) for w in np.floor(weights * extra)]
    gaps[-1] += idle - sum(gaps)
    state = np.empty((n, 4))
    current = random_start(rng, geo)
    frame = 0
    segments = []
    for i in range(k):
        state[frame:frame + gaps[i]] = current
        frame += gaps[i]
        cls, motion = _segment_motion(classes[i], current, lengths[i], rng, geo)
        state[frame:frame + lengths[i]] = motion
        segments.append((frame, frame + lengths[i], cls))
        frame += lengths[i]
        current = motion[-1].copy()
    state[frame:] = current
    return state, segments


def plan_anomaly(item: Item, subjects: list[Identity], rng: np.random.Generator, geo: Geometry):
    """Normal untrimmed activity, plus (for anomalous videos) erratic jumping or an intruding second actor
    in each anomalous interval. Returns (state, [(start, end, kind)], extra actors); kind is one of
    ``ANOMALY_KINDS``."""
    n = item.n_frames
    k = max(1, min(3, n // 90))
    lengths = [int(x) for x in rng.integers(24, 49, size=k)]
    while sum(lengths) + (k + 1) * MIN_GAP > n and lengths:
        lengths = [max(8, x // 2) for x in lengths]
        if sum(lengths) + (k + 1) * MIN_GAP > n:
            lengths.pop()
            k -= 1
    classes = [int(c) for c in rng.integers(0, len(CLASS_NAMES), size=len(lengths))]
    state, _ = plan_untrimmed(n, classes, lengths, rng, geo)
    intervals: list[tuple[int, int, str]] = []
    extra = []
    if not item.anomalous:
        return state, intervals, extra
    edge, gap = 8, 16
    lens = list(item.lengths)
    free = n - 2 * edge - sum(lens) - gap * (len(lens) - 1)
    if free < 0:  # very short video: one interval in the middle
        lens = [min(lens[0], n - 2)]
        edge, free = max(1, (n - lens[0]) // 2), 0
    offsets = np.sort(rng.integers(0, free + 1, size=len(lens)))
    frame = edge
    previous = 0
    lows, highs = geo.lows(), geo.highs()
    for length, offset in zip(lens, offsets):
        start = frame + int(offset - previous)
        end = start + length
        frame, previous = end + gap, int(offset)
        erratic = rng.uniform() < 0.5
        intervals.append((start, end, ANOMALY_KINDS[0] if erratic else ANOMALY_KINDS[1]))
        if erratic:
            # erratic: the actor jumps to a new random offset every 2-4 frames and spins
            t = start
            while t < end:
                hold = int(rng.integers(2, 5))
                jump = np.array([rng.uniform(-0.25, 0.25) * geo.side, rng.uniform(-0.25, 0.25) * geo.side,
                                 rng.uniform(-0.3, 0.3), rng.uniform(-1.2, 1.2)])
                sl = slice(t, min(end, t + hold))
                state[sl] = state[sl] + jump
                state[sl, :3] = np.clip(state[sl, :3], lows, highs)
                t += hold
        else:
            # intruder: another identity pops up and darts around fast, bouncing off the frame borders
            others = [i for i in range(len(subjects)) if i != item.subject]
            other = subjects[int(rng.choice(others))]
            pos = rng.uniform(lows[:2], highs[:2])
            speed = rng.uniform(1.6, 2.6) * geo.speed
            heading = rng.uniform(0, 2 * math.pi)
            vel = speed * np.array([math.cos(heading), math.sin(heading)])
            angle, spin = rng.uniform(-math.pi, math.pi), rng.uniform(-0.25, 0.25)
            log_s = rng.uniform(math.log(0.8), math.log(1.2))
            track = np.empty((length, 4))
            for i in range(length):
                track[i] = (pos[0], pos[1], log_s, angle)
                pos = pos + vel
                for dim in range(2):
                    if pos[dim] < lows[dim] or pos[dim] > highs[dim]:
                        vel[dim] = -vel[dim]
                        pos[dim] = np.clip(pos[dim], lows[dim], highs[dim])
                angle += spin
            extra.append((other.sprite, track, np.arange(start, end)))
    return state, intervals, extra
