"""One brightness mapping for a whole archive (`--stretch archive`): a percentile stretch measured once on a sample
of its frames, then applied to every frame alike, so that consecutive frames never pump.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

#: the percentiles of the sample's values that become black and white
LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.5
#: frames the stretch is measured on, spread evenly over the archive, and pixels taken from each at most
SAMPLE_FRAMES, SAMPLE_PIXELS = 16, 1 << 18


def full_scale(pixels: np.ndarray) -> np.ndarray:
    """uint8 / uint16 pixels as float32 fractions of their type's full range (the RGB channels of RGB(A))."""
    values = pixels[..., :3] if pixels.ndim == 3 else pixels
    return values.astype(np.float32) / np.float32(np.iinfo(pixels.dtype).max)


@dataclass(frozen=True)
class Levels:
    """`low` and `high` (fractions of full scale, low < high) become black and white; values between, stretched."""

    low: float
    high: float

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Grey HxW or RGB(A) HxWxC uint8 / uint16 -> the same shape (alpha dropped) as uint16, stretched."""
        if pixels.dtype not in (np.uint8, np.uint16):
            return pixels
        stretched = (full_scale(pixels) - np.float32(self.low)) * np.float32(65535.0 / (self.high - self.low))
        return np.clip(np.rint(stretched), 0, 65535).astype(np.uint16)

    @classmethod
    def measure(cls, frames: Iterable[np.ndarray]) -> Levels | None:
        """The stretch of these frames' pooled values (at most `SAMPLE_PIXELS` of each, evenly strided), or None
        where they hold no contrast at all."""
        values = []
        for pixels in frames:
            flat = full_scale(pixels).reshape(-1)
            values.append(flat[:: max(1, flat.size // SAMPLE_PIXELS)])
        if not values:
            return None
        low, high = np.percentile(np.concatenate(values), (LOW_PERCENTILE, HIGH_PERCENTILE))
        return cls(float(low), float(high)) if high > low else None
