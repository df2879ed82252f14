"""The picture checks on synthetic frames: dark, bright, covered, blurry, frozen, scene change."""

from __future__ import annotations

import numpy as np
import pytest

from camera_health.core import image_checks as ic

T = ic.PictureThresholds()


def scene(seed: int = 1, brightness: float = 1.0) -> ic.Frame:
    """A textured street-like view: shapes of several tones over a gradient, with sensor noise."""
    rng = np.random.default_rng(seed)
    frame = np.tile(np.linspace(40, 200, 320, dtype=np.float32), (240, 1))
    for _ in range(25):
        y, x = rng.integers(0, 200), rng.integers(0, 280)
        frame[y:y + rng.integers(10, 40), x:x + rng.integers(10, 40)] = rng.integers(0, 255)
    frame += rng.normal(0, 2, frame.shape)
    out: ic.Frame = np.clip(frame * brightness, 0, 255).astype(np.uint8)
    return out


def noisy(frame: ic.Frame, seed: int) -> ic.Frame:
    rng = np.random.default_rng(seed)
    return np.clip(frame.astype(np.float32) + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)


def box_blur(frame: ic.Frame, radius: int = 4) -> ic.Frame:
    out = frame.astype(np.float32)
    for axis in (0, 1):
        total = np.zeros_like(out)
        for shift in range(-radius, radius + 1):
            total += np.roll(out, shift, axis=axis)
        out = (total / (2 * radius + 1)).astype(np.float32)
    blurred: ic.Frame = out.astype(np.uint8)
    return blurred


def live(frame: ic.Frame) -> list[ic.Frame]:
    return [noisy(frame, seed) for seed in range(3)]


def test_a_healthy_live_view_raises_no_flag() -> None:
    reference = ic.thumbnail(scene())
    flags, stats = ic.picture_flags(live(scene()), T, reference)
    assert flags == []
    assert stats is not None and stats.sharpness > T.blur_min_sharpness


@pytest.mark.parametrize("value, expected", [(5, [ic.TOO_DARK, ic.COVERED]),
                                             (250, [ic.TOO_BRIGHT, ic.COVERED]), (128, [ic.COVERED])])
def test_an_even_picture_is_covered_and_dark_or_bright_by_its_luma(value: int, expected: list[str]) -> None:
    frames = live(np.full((240, 320), value, dtype=np.uint8))
    flags, _ = ic.picture_flags(frames, T)
    assert flags == expected


def test_a_dark_scene_with_detail_is_dark_but_not_covered() -> None:
    flags, _ = ic.picture_flags(live(scene(brightness=0.15)), T)
    assert ic.TOO_DARK in flags and ic.COVERED not in flags


def test_a_defocused_lens_is_blurry() -> None:
    flags, stats = ic.picture_flags(live(box_blur(scene())), T)
    assert flags == [ic.TOO_BLURRY], stats


def test_identical_frames_are_frozen_and_noise_is_not() -> None:
    still = scene()
    assert ic.picture_flags([still, still.copy(), still.copy()], T)[0] == [ic.FROZEN]
    assert ic.FROZEN not in ic.picture_flags(live(still), T)[0]


def test_a_turned_camera_is_a_scene_change_and_a_darker_evening_is_not() -> None:
    reference = ic.ReferenceView(samples_needed=2)
    for seed in (10, 11):
        reference.offer(noisy(scene(), seed), [])
    assert reference.learned is not None
    turned = np.ascontiguousarray(np.fliplr(scene(seed=7)))  # another view, other objects
    assert ic.picture_flags(live(turned), T, reference.learned)[0] == [ic.SCENE_CHANGE]
    assert ic.picture_flags(live(scene(brightness=0.6)), T, reference.learned)[0] == []


def test_a_tampered_sample_teaches_the_reference_nothing() -> None:
    reference = ic.ReferenceView(samples_needed=1)
    reference.offer(np.zeros((240, 320), dtype=np.uint8), [ic.COVERED])
    assert reference.learned is None
    reference.offer(scene(), [])
    assert reference.learned is not None


def test_the_laplacian_variance_is_zero_on_flat_and_high_on_edges() -> None:
    flat = np.full((20, 20), 100, dtype=np.float32)
    edges = np.tile(np.array([0, 255], dtype=np.float32), (20, 10))
    assert ic.laplacian_variance(flat) == 0.0
    assert ic.laplacian_variance(edges) > 10_000
