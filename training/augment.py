"""Photometric changes of a colour photo: the archive's range of light, tone, noise and compression.

Used two ways: as training augmentation (`Photometric`, drawn at random per photo), and as the fixed perturbations of
the robustness measure (`oppy-bench quality --perturb`). Each change keeps the target the colour of what the input
shows:
- exposure acts on the photo in linear light, before L* and a*, b* are taken: both follow, as if the photo had been
  taken so;
- a tone curve acts on L* alone (a stretch by whoever published the frame): a*, b* stay;
- blur, noise, grey levels and JPEG act on the grey frame the engine would read (the camera's and archive's losses):
  the colour of the scene stays.
numpy and OpenCV only: the benchmarks use it without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import cv2
import numpy as np

from oppy.engine.kernels.lab import EPSILON, KAPPA, _srgb_decode, _srgb_encode, gray_to_l, rgb_to_lab

#: the L* a flat curve turns about: L* x c + 31.4 x (1 - c), so that c = 0.5 is L* x 0.5 + 15.7
FLAT_PIVOT = 31.4


def exposed(rgb: np.ndarray, gain: float) -> np.ndarray:
    """An 8-bit RGB photo as it would have been taken with `gain` times the light (linear light, clipped at white):
    HxWx3 float32 RGB in [0, 1], which `rgb_to_lab` takes."""
    linear = _srgb_decode(np.asarray(rgb, np.float32) / np.float32(255)) * np.float32(gain)
    return _srgb_encode(linear).astype(np.float32)


def gamma_curve(lightness: np.ndarray, gamma: float) -> np.ndarray:
    """L* through a power curve: 100 (L*/100) ** gamma (gamma > 1 darkens the mid-tones)."""
    return (100.0 * (np.clip(lightness, 0, 100) / 100.0) ** gamma).astype(np.float32)


def flat_curve(lightness: np.ndarray, contrast: float, pivot: float = FLAT_PIVOT) -> np.ndarray:
    """L* with its contrast scaled by `contrast` about `pivot`: a flat (c < 1) stretch."""
    return np.clip(pivot + (lightness - pivot) * contrast, 0, 100).astype(np.float32)


def grey_of(lightness: np.ndarray) -> np.ndarray:
    """L* -> the grey sRGB level (0..255, float32) whose lightness it is: the frame the engine would read."""
    f = (np.asarray(lightness, np.float64) + 16.0) / 116.0
    luminance = np.where(f**3 > EPSILON, f**3, np.asarray(lightness, np.float64) / KAPPA)
    return (_srgb_encode(luminance) * 255.0).astype(np.float32)


def lightness_of(grey: np.ndarray) -> np.ndarray:
    """Grey levels (any float, rounded and clipped to 8 bits, as a frame is stored) -> L*, by the engine's kernel."""
    return gray_to_l(np.clip(np.round(grey), 0, 255).astype(np.uint8))


def noisy(lightness: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """L* of the grey frame with Gaussian noise of `sigma` grey levels (of 255)."""
    grey = grey_of(lightness)
    return lightness_of(grey + rng.normal(0.0, sigma, grey.shape).astype(np.float32))


def jpeg(lightness: np.ndarray, quality: int) -> np.ndarray:
    """L* of the grey frame stored as a JPEG of `quality` (1..100) and read back."""
    grey = np.clip(np.round(grey_of(lightness)), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a JPEG of quality {quality}")
    return gray_to_l(cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE))


def blurred(lightness: np.ndarray, sigma: float) -> np.ndarray:
    """L* of the grey frame through a Gaussian blur of `sigma` px."""
    if sigma <= 0:
        return np.asarray(lightness, np.float32)
    return lightness_of(cv2.GaussianBlur(grey_of(lightness), (0, 0), sigma))


def posterised(lightness: np.ndarray, levels: int) -> np.ndarray:
    """L* of the grey frame with `levels` grey levels spread over its own range (a dim 12-bit frame stretched to
    8 bits shows few)."""
    grey = grey_of(lightness)
    low, high = float(grey.min()), float(grey.max())
    if high - low < 1e-6 or levels >= 256:
        return lightness_of(grey)
    step = (high - low) / (levels - 1)
    return lightness_of(low + np.round((grey - low) / step) * step)


@dataclass(frozen=True)
class Photometric:
    """Strengths of the training augmentation; every change is off at its default. Each change that is on is applied
    to a photo with chance `chance`, at a strength drawn uniformly up to its bound."""

    #: stops of exposure: a gain of 2 ** U(-exposure, exposure / 4) in linear light
    exposure: float = 0.0
    #: a tone curve L* -> 100 (L*/100) ** g, with log g uniform in [-log gamma, log gamma]
    gamma: float = 1.0
    #: a flat curve: contrast c uniform in [contrast, 1] about an L* pivot uniform in [15, 60]
    contrast: float = 1.0
    #: luminance noise of up to this sigma, in grey levels of 255
    noise: float = 0.0
    #: JPEG of a quality uniform in [jpeg, 95] (0: off)
    jpeg: int = 0
    #: Gaussian blur of up to this sigma, px
    blur: float = 0.0
    #: as few as this many grey levels over the frame's range, log-uniform up to 256 (0: off)
    levels: int = 0
    chance: float = 0.5

    #: each strength's valid range, for one-line refusals
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "exposure": (0.0, 6.0), "gamma": (1.0, 4.0), "contrast": (0.1, 1.0), "noise": (0.0, 40.0), "jpeg": (0, 95),
        "blur": (0.0, 4.0), "levels": (0, 256), "chance": (0.0, 1.0)}

    def __post_init__(self):
        for field in fields(self):
            value, (low, high) = getattr(self, field.name), self.RANGES[field.name]
            if not (isinstance(value, int | float) and np.isfinite(value) and low <= value <= high):
                raise ValueError(f"augmentation {field.name} must be in [{low}, {high}], not {value!r}")
        if 0 < self.jpeg < 5:
            raise ValueError(f"augmentation jpeg must be 0 (off) or a quality in [5, 95], not {self.jpeg}")
        if 0 < self.levels < 2:
            raise ValueError(f"augmentation levels must be 0 (off) or at least 2, not {self.levels}")

    @property
    def active(self) -> bool:
        return self.chance > 0 and self != Photometric(chance=self.chance)

    def lab(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An 8-bit RGB photo -> HxWx3 float32 LAB with the exposure and tone changes drawn (the input and the
        target change together); the grey-frame losses come after any resizing, from `degrade`."""
        chance = self.chance
        if self.exposure > 0 and rng.random() < chance:
            lab = rgb_to_lab(exposed(rgb, 2.0 ** rng.uniform(-self.exposure, self.exposure / 4)))
        else:
            lab = rgb_to_lab(rgb)
        if self.gamma > 1 and rng.random() < chance:
            lab[..., 0] = gamma_curve(lab[..., 0], float(np.exp(rng.uniform(-1, 1) * np.log(self.gamma))))
        if self.contrast < 1 and rng.random() < chance:
            lab[..., 0] = flat_curve(lab[..., 0], rng.uniform(self.contrast, 1.0), rng.uniform(15.0, 60.0))
        return lab

    def degrade(self, lightness: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """L* of a photo through the grey frame's losses drawn: blur, noise, few grey levels, JPEG, in a camera's
        order. The a*, b* of the target stay."""
        chance = self.chance
        out = np.asarray(lightness, np.float32)
        if self.blur > 0 and rng.random() < chance:
            out = blurred(out, rng.uniform(0.0, self.blur))
        if self.noise > 0 and rng.random() < chance:
            out = noisy(out, rng.uniform(0.0, self.noise), rng)
        if self.levels and rng.random() < chance:
            out = posterised(out, round(float(np.exp(rng.uniform(np.log(self.levels), np.log(256))))))
        if self.jpeg and rng.random() < chance:
            out = jpeg(out, int(rng.integers(self.jpeg, 96)))
        return out
