"""Picture checks of a camera from its decoded frames: plain functions over numpy luma arrays.

Each frame is a 2-D uint8 array of luma (Y, 0..255). The checks, and the tamper flag each raises:
  too dark / too bright   mean luma below `dark_luma` / above `bright_luma`      TOO_DARK / TOO_BRIGHT
  covered or flat         luma standard deviation below `flat_max_std`: a lens  COVERED
                          cap, a wall, a sprayed lens show one even tone
  blurry                  variance of the Laplacian (on 2x2-binned luma, so     TOO_BLURRY
                          sensor noise does not pass for detail) below
                          `blur_min_sharpness` (a defocused or fogged lens
                          loses its edges); not
                          judged on a flat picture, which has no edges anyway
  frozen                  consecutive sampled frames identical (mean absolute   FROZEN
                          difference below `frozen_max_diff`): a live sensor
                          always shows some noise, a stuck encoder repeats
  scene change            the picture no longer matches the learned reference   SCENE_CHANGE
                          view (correlation of 32x24 block means below
                          `scene_min_correlation`): the camera was turned/moved
The reference view is the mean thumbnail of the first `reference_samples` healthy samples;
normalising the thumbnail (zero mean, unit spread) keeps day/night brightness from reading as
a moved camera.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]
Thumbnail = npt.NDArray[np.float32]

TOO_DARK = "too_dark"
TOO_BRIGHT = "too_bright"
COVERED = "covered"
TOO_BLURRY = "too_blurry"
FROZEN = "frozen"
SCENE_CHANGE = "scene_change"
THUMB_W, THUMB_H = 32, 24


@dataclass(frozen=True)
class PictureThresholds:
    dark_luma: float = 35.0
    bright_luma: float = 225.0
    flat_max_std: float = 6.0
    blur_min_sharpness: float = 100.0
    frozen_max_diff: float = 0.2
    scene_min_correlation: float = 0.5
    reference_samples: int = 3


@dataclass(frozen=True)
class FrameStats:
    mean_luma: float
    std_luma: float
    sharpness: float


def frame_stats(frame: Frame) -> FrameStats:
    luma = frame.astype(np.float32)
    return FrameStats(float(luma.mean()), float(luma.std()), laplacian_variance(binned(luma)))


def binned(luma: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """2x2 block means: halves the sensor noise, which would otherwise read as sharp detail."""
    h, w = (luma.shape[0] // 2) * 2, (luma.shape[1] // 2) * 2
    binned: npt.NDArray[np.float32] = luma[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return binned


def laplacian_variance(luma: npt.NDArray[np.float32]) -> float:
    """Variance of the 4-neighbour Laplacian over the frame's interior (a sharpness measure)."""
    if luma.shape[0] < 3 or luma.shape[1] < 3:
        return 0.0
    lap = (luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4.0 * luma[1:-1, 1:-1])
    return float(lap.var())


def mean_abs_diff(a: Frame, b: Frame) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def thumbnail(frame: Frame) -> Thumbnail:
    """32x24 block means, normalised to zero mean and unit spread (a flat one stays zero)."""
    h, w = frame.shape
    bh, bw = max(1, h // THUMB_H), max(1, w // THUMB_W)
    cropped = frame[:bh * THUMB_H, :bw * THUMB_W].astype(np.float32)
    blocks = cropped.reshape(THUMB_H, bh, THUMB_W, bw).mean(axis=(1, 3))
    spread = float(blocks.std())
    centred = blocks - blocks.mean()
    normalised: Thumbnail = (centred / spread if spread > 1e-3 else centred).astype(np.float32)
    return normalised


def correlation(a: Thumbnail, b: Thumbnail) -> float:
    """Pearson correlation of two normalised thumbnails (1 = same view, 0 = unrelated)."""
    return float((a * b).mean())


def picture_flags(frames: Sequence[Frame], t: PictureThresholds,
                  reference: Thumbnail | None = None) -> tuple[list[str], FrameStats | None]:
    """The tamper flags of a sample's analysed frames, with the stats of its last frame."""
    if not frames:
        return [], None
    stats = frame_stats(frames[-1])
    flags = []
    if stats.mean_luma < t.dark_luma:
        flags.append(TOO_DARK)
    if stats.mean_luma > t.bright_luma:
        flags.append(TOO_BRIGHT)
    flat = stats.std_luma < t.flat_max_std
    if flat:
        flags.append(COVERED)
    elif stats.sharpness < t.blur_min_sharpness:
        flags.append(TOO_BLURRY)
    if len(frames) >= 2 and all(mean_abs_diff(a, b) < t.frozen_max_diff for a, b in pairwise(frames)):
        flags.append(FROZEN)
    if reference is not None and not flat and \
            correlation(reference, thumbnail(frames[-1])) < t.scene_min_correlation:
        flags.append(SCENE_CHANGE)
    return flags, stats


class ReferenceView:
    """The learned view of one camera: mean thumbnail of its first healthy samples."""

    def __init__(self, samples_needed: int, learned: Thumbnail | None = None) -> None:
        self.samples_needed = max(1, samples_needed)
        self._sum: Thumbnail | None = None
        self._count = 0
        self.learned = learned

    def offer(self, frame: Frame, flags: Sequence[str]) -> None:
        """Learns from a sample until the reference is set; a tampered sample teaches nothing."""
        if self.learned is not None or flags:
            return
        thumb = thumbnail(frame)
        self._sum = thumb if self._sum is None else self._sum + thumb
        self._count += 1
        if self._count >= self.samples_needed:
            mean = self._sum / self._count
            spread = float(mean.std())
            self.learned = (mean / spread if spread > 1e-3 else mean).astype(np.float32)
