"""Colourisation quality metrics, numpy only: CIEDE2000, ab PSNR, colourfulness.

Shared by training's evaluation and the benchmarks, so both report the same numbers.
"""

from __future__ import annotations

import numpy as np


def delta_e_ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 colour difference of two ...x3 LAB arrays (kL = kC = kH = 1), float64."""
    l1, a1, b1 = (np.asarray(lab1, np.float64)[..., i] for i in range(3))
    l2, a2, b2 = (np.asarray(lab2, np.float64)[..., i] for i in range(3))
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    chroma_product = c1p * c2p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chroma_product == 0, 0.0, dh)
    d_l, d_c = l2 - l1, c2p - c1p
    d_h = 2 * np.sqrt(chroma_product) * np.sin(np.radians(dh / 2))
    l_mean, cp_mean = (l1 + l2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_mean = np.where(np.abs(h1p - h2p) > 180, np.where(h_sum < 360, h_sum + 360, h_sum - 360), h_sum) / 2
    h_mean = np.where(chroma_product == 0, h_sum, h_mean)
    t = (1 - 0.17 * np.cos(np.radians(h_mean - 30)) + 0.24 * np.cos(np.radians(2 * h_mean))
         + 0.32 * np.cos(np.radians(3 * h_mean + 6)) - 0.20 * np.cos(np.radians(4 * h_mean - 63)))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * cp_mean
    s_h = 1 + 0.015 * cp_mean * t
    r_t = (-2 * np.sqrt(cp_mean**7 / (cp_mean**7 + 25.0**7))
           * np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2)))))
    return np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h))


def ab_psnr(lab_pred: np.ndarray, lab_true: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of the a*, b* channels, with `peak` the a*/b* range (-128..127 -> 255)."""
    mse = float(np.mean((np.asarray(lab_pred, np.float64)[..., 1:] - np.asarray(lab_true, np.float64)[..., 1:]) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk's colourfulness M of an HxWx3 RGB image (0 for grey; ~30 is 'moderately')."""
    rgb = np.asarray(rgb, np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


#: a pixel counts as coloured, for the hue checks below, above this C*ab
HUE_CHROMA = 6.0
#: a frame or photo is blotched where more than this share of its pixels take a hue it should not have
BLOTCH_SHARE = 0.005
#: tan(110 degrees) negated: above this b*/|a*| a hue with a* < 0 is a yellow, below it a green
GREEN_SLOPE = 2.7475
#: the hue classes of `hue_classes`, in the order their masks come
HUES = ("blue", "green", "warm", "neutral")


def hue_classes(lab: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of an ...x3 LAB image's pixels by hue: `blue` (b* < -3 with C*ab > 6, purples included:
    never in Mars scenes but a sunset), `green` (hue angle 110 to 180 degrees with C*ab > 6; a yellow with a* a
    little below 0 is not green), `warm` (the rest with C*ab > 6: Mars's reds, browns, ochres and yellows) and
    `neutral` (C*ab <= 6)."""
    a, b = np.asarray(lab[..., 1], np.float32), np.asarray(lab[..., 2], np.float32)
    coloured = np.hypot(a, b) > HUE_CHROMA
    blue = coloured & (b < -3)
    green = coloured & ~blue & (a < 0) & (b < -a * np.float32(GREEN_SLOPE))
    return {"blue": blue, "green": green, "warm": coloured & ~blue & ~green, "neutral": ~coloured}


def hue_shares(lab: np.ndarray) -> dict[str, float]:
    """The share of an image's pixels in each hue class of `hue_classes`."""
    return {name: float(mask.mean()) for name, mask in hue_classes(lab).items()}


def invented_hue_share(lab_pred: np.ndarray, lab_true: np.ndarray | None = None) -> float:
    """The share of pixels that a colourisation paints blue or green where the truth (when given) is not that hue;
    without a truth, every blue or green pixel (a Mars frame has none to speak of)."""
    predicted = hue_classes(lab_pred)
    truth = hue_classes(lab_true) if lab_true is not None else None
    invented = np.zeros(np.shape(lab_pred)[:-1], bool)
    for hue in ("blue", "green"):
        invented |= predicted[hue] & ~truth[hue] if truth is not None else predicted[hue]
    return float(invented.mean())


def blotched(lab_pred: np.ndarray, lab_true: np.ndarray | None = None) -> bool:
    """Whether more than BLOTCH_SHARE of the pixels take a hue the truth (or, without one, Mars) does not have."""
    return invented_hue_share(lab_pred, lab_true) > BLOTCH_SHARE
