"""CIELAB conversions (D65 white, sRGB primaries and companding) as Numba kernels over whole frames.

The same kernels serve training and inference, so what a model learns from and what it is fed cannot drift.
Layouts: grey HxW, RGB HxWx3 (uint8, uint16, or float in [0, 1]), LAB HxWx3 float32 with L in [0, 100].
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .parallel import parallel_kernel

# sRGB (linear) -> XYZ, and D65 white (2 degree observer), as in IEC 61966-2-1 and scikit-image.
RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
# Exact CIE constants rather than the rounded 0.008856 / 7.787.
EPSILON = 216.0 / 24389.0
KAPPA = 24389.0 / 27.0


def _srgb_decode(encoded: np.ndarray) -> np.ndarray:
    encoded = np.asarray(encoded, dtype=np.float64)
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def _srgb_encode(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def _lightness_of_luminance(y: np.ndarray) -> np.ndarray:
    f = np.where(y > EPSILON, np.cbrt(y), (KAPPA * y + 16.0) / 116.0)
    return 116.0 * f - 16.0


# Linear light in [0, 1] -> 8-bit code, sampled at bin centres: fine enough that every 8-bit colour
# survives RGB -> LAB -> RGB unchanged, and no code is off by more than one anywhere.
_ENCODE_BINS = 65536
_LIN8 = _srgb_decode(np.arange(256) / 255.0)
_LIN16 = _srgb_decode(np.arange(65536) / 65535.0)
_TABLES = {
    "lin8": _LIN8.astype(np.float32),
    "lin16": _LIN16.astype(np.float32),
    "lightness8": _lightness_of_luminance(_LIN8).astype(np.float32),
    "lightness16": _lightness_of_luminance(_LIN16).astype(np.float32),
    "encode8": np.round(_srgb_encode((np.arange(_ENCODE_BINS) + 0.5) / _ENCODE_BINS) * 255).astype(np.uint8),
}
_NO_TABLE = np.empty(0, np.float32)
_M = (RGB_TO_XYZ / WHITE_D65[:, None]).astype(np.float32)  # folds the white point into the forward matrix
_M_INV = (XYZ_TO_RGB * WHITE_D65[None, :]).astype(np.float32)

# float32 constants, so that the kernels stay in single precision and vectorise
_EPSILON32 = np.float32(EPSILON)
_KAPPA_116 = np.float32(KAPPA / 116.0)
_INV_KAPPA_116 = np.float32(116.0 / KAPPA)
_C16 = np.float32(16.0 / 116.0)
_ZERO, _ONE = np.float32(0.0), np.float32(1.0)


@njit(nogil=True, inline="always", fastmath=True)
def _f(t):
    """CIE f(t): the cube root above epsilon, linear below. The cube root is t^(5/16) from square roots
    refined by two Halley steps (float32 exact), because a libm cbrt call stops the loop vectorising."""
    s = np.sqrt(np.sqrt(t))
    y = s * np.sqrt(np.sqrt(s))
    y3 = y * y * y
    y = y * (y3 + 2 * t) / (2 * y3 + t)
    y3 = y * y * y
    y = y * (y3 + 2 * t) / (2 * y3 + t)
    return y if t > _EPSILON32 else t * _KAPPA_116 + _C16


@njit(nogil=True, inline="always", fastmath=True)
def _f_inv(f):
    cube = f * f * f
    linear = (f - _C16) * _INV_KAPPA_116
    # negative tristimulus values are no colour at all: clamp them (scikit-image clamps Z likewise)
    return max(cube if cube > _EPSILON32 else linear, _ZERO)


#: fast-math without the assumption that no value is NaN or infinite, for kernels that index tables by data
_NAN_AWARE = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(nogil=True, inline="always", fastmath=_NAN_AWARE)
def _index(value, bins, last):
    """A linear-light value -> its entry of a table of `last` + 1 bins: [0, 1] spread over them, NaN to 0."""
    clamped = value if value > _ZERO else _ZERO  # NaN fails the comparison: it becomes 0
    clamped = clamped if clamped < _ONE else _ONE
    index = np.int32(clamped * bins)
    return min(max(index, np.int32(0)), last)


@njit(nogil=True, inline="always")
def _srgb_decode_scalar(c):
    c = min(max(c, 0.0), 1.0)
    if c <= 0.04045:
        return c / 12.92
    return ((c + 0.055) / 1.055) ** 2.4


@parallel_kernel()
def _lookup_kernel(values, table, out):
    for y in prange(values.shape[0]):
        for x in range(values.shape[1]):
            out[y, x] = table[values[y, x]]


@njit(nogil=True, inline="always", fastmath=True)
def _linear_rows_to_lab(r, g, b, m, out_row):
    """Linear RGB rows (overwritten) -> interleaved LAB row; the middle loop is plain arithmetic (SIMD)."""
    for x in range(r.shape[0]):
        fx = _f(m[0, 0] * r[x] + m[0, 1] * g[x] + m[0, 2] * b[x])
        fy = _f(m[1, 0] * r[x] + m[1, 1] * g[x] + m[1, 2] * b[x])
        fz = _f(m[2, 0] * r[x] + m[2, 1] * g[x] + m[2, 2] * b[x])
        r[x] = np.float32(116.0) * fy - np.float32(16.0)
        g[x] = np.float32(500.0) * (fx - fy)
        b[x] = np.float32(200.0) * (fy - fz)
    for x in range(r.shape[0]):
        out_row[x, 0] = r[x]
        out_row[x, 1] = g[x]
        out_row[x, 2] = b[x]


@parallel_kernel(fastmath=True)
def _rgb_to_lab_kernel(rgb, lin, m, out):
    """Integer pixels are linearised through the table `lin`; with an empty table, pixels are floats in
    [0, 1] and linearised exactly."""
    width = rgb.shape[1]
    for y in prange(rgb.shape[0]):
        r = np.empty(width, np.float32)
        g = np.empty(width, np.float32)
        b = np.empty(width, np.float32)
        for x in range(width):
            if lin.shape[0]:
                r[x] = lin[np.int64(rgb[y, x, 0])]
                g[x] = lin[np.int64(rgb[y, x, 1])]
                b[x] = lin[np.int64(rgb[y, x, 2])]
            else:
                r[x] = _srgb_decode_scalar(rgb[y, x, 0])
                g[x] = _srgb_decode_scalar(rgb[y, x, 1])
                b[x] = _srgb_decode_scalar(rgb[y, x, 2])
        _linear_rows_to_lab(r, g, b, m, out[y])


@parallel_kernel(fastmath=_NAN_AWARE)
def _lab_to_rgb8_kernel(lightness, ab, ab_scale, m, encode, out):
    # Every float becomes a valid table index: NaN and -inf go to 0, inf and overflows to the last entry. The
    # comparisons keep their meaning for NaN (no "nnan" in the fast-math flags), and the integer index is clamped
    # again, whatever a float-to-int conversion of a non-finite value gives on this machine.
    height, width = lightness.shape
    last = np.int32(encode.shape[0] - 1)
    bins = np.float32(encode.shape[0] - 1)
    a_scale = np.float32(ab_scale / 500.0)
    b_scale = np.float32(ab_scale / 200.0)
    for y in prange(height):
        r = np.empty(width, np.int32)
        g = np.empty(width, np.int32)
        b = np.empty(width, np.int32)
        for x in range(width):  # plain arithmetic: vectorises
            fy = (lightness[y, x] + np.float32(16.0)) * np.float32(1.0 / 116.0)
            xx = _f_inv(fy + ab[0, y, x] * a_scale)
            yy = _f_inv(fy)
            zz = _f_inv(fy - ab[1, y, x] * b_scale)
            r[x] = _index(m[0, 0] * xx + m[0, 1] * yy + m[0, 2] * zz, bins, last)
            g[x] = _index(m[1, 0] * xx + m[1, 1] * yy + m[1, 2] * zz, bins, last)
            b[x] = _index(m[2, 0] * xx + m[2, 1] * yy + m[2, 2] * zz, bins, last)
        for x in range(width):
            out[y, x, 0] = encode[r[x]]
            out[y, x, 1] = encode[g[x]]
            out[y, x, 2] = encode[b[x]]


def gray_to_l(gray: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Grey sRGB pixels -> CIE lightness.

    gray: HxW uint8 (0..255), uint16 (0..65535) or float in [0, 1] (as float RGB is; outside it clipped),
    sRGB-encoded. Returns HxW float32 L* in [0, 100].
    """
    if gray.ndim != 2:
        raise ValueError(f"gray_to_l wants an HxW array, got shape {gray.shape}")
    if gray.dtype in (np.float32, np.float64):
        lightness = _lightness_of_luminance(_srgb_decode(np.clip(gray, 0.0, 1.0))).astype(np.float32)
        if out is None:
            return lightness
        out[...] = lightness
        return out
    if gray.dtype == np.uint8:
        table = _TABLES["lightness8"]
    elif gray.dtype == np.uint16:
        table = _TABLES["lightness16"]
    else:
        raise TypeError(f"gray_to_l wants uint8, uint16 or float pixels, got {gray.dtype}")
    if out is None:
        out = np.empty(gray.shape, np.float32)
    _lookup_kernel(gray, table, out)
    return out


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB -> CIELAB (D65).

    rgb: HxWx3, uint8, uint16, or float in [0, 1]. Returns HxWx3 float32: L* in [0, 100], a*, b* about
    [-128, 127].
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb_to_lab wants an HxWx3 array, got shape {rgb.shape}")
    out = np.empty(rgb.shape, np.float32)
    if rgb.dtype == np.uint8:
        _rgb_to_lab_kernel(rgb, _TABLES["lin8"], _M, out)
    elif rgb.dtype == np.uint16:
        _rgb_to_lab_kernel(rgb, _TABLES["lin16"], _M, out)
    elif rgb.dtype in (np.float32, np.float64):
        _rgb_to_lab_kernel(np.ascontiguousarray(rgb, np.float32), _NO_TABLE, _M, out)
    else:
        raise TypeError(f"rgb_to_lab wants uint8, uint16 or float pixels, got {rgb.dtype}")
    return out


def l_ab_to_rgb(
    lightness: np.ndarray, ab: np.ndarray, ab_scale: float = 1.0, out: np.ndarray | None = None
) -> np.ndarray:
    """CIELAB given as planes -> 8-bit sRGB. Out of gamut, negative XYZ is clamped to zero and each RGB
    channel clipped to [0, 255].

    lightness: HxW float32 L* in [0, 100]; ab: 2xHxW float32 planes (a, b), multiplied by `ab_scale` to give
    a*, b*. Returns HxWx3 uint8 RGB.
    """
    if lightness.ndim != 2 or ab.shape != (2, *lightness.shape):
        raise ValueError(f"l_ab_to_rgb wants HxW and 2xHxW arrays, got {lightness.shape} and {ab.shape}")
    if out is None:
        out = np.empty((*lightness.shape, 3), np.uint8)
    _lab_to_rgb8_kernel(lightness, ab, float(ab_scale), _M_INV, _TABLES["encode8"], out)
    return out


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65) -> 8-bit sRGB. lab: HxWx3 float32 (L* in [0, 100]). Returns HxWx3 uint8, clipped."""
    if lab.ndim != 3 or lab.shape[2] != 3:
        raise ValueError(f"lab_to_rgb wants an HxWx3 array, got shape {lab.shape}")
    lab = np.asarray(lab, np.float32)
    return l_ab_to_rgb(np.ascontiguousarray(lab[..., 0]), np.ascontiguousarray(lab[..., 1:].transpose(2, 0, 1)))


def to_lightness(pixels: np.ndarray) -> np.ndarray:
    """Any decoded frame -> L*: grey HxW, or HxWx3 RGB / HxWx4 RGBA (alpha ignored), 8- or 16-bit, or float in
    [0, 1].

    Returns HxW float32 L* in [0, 100].
    """
    if pixels.ndim == 2:
        return gray_to_l(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        return gray_to_l(np.ascontiguousarray(pixels[..., 0]))
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        rgb = pixels[..., :3]
        grey = np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
        if grey and rgb.dtype in (np.uint8, np.uint16):  # the grey table is for integer pixels
            return gray_to_l(np.ascontiguousarray(rgb[..., 0]))
        return np.ascontiguousarray(rgb_to_lab(np.ascontiguousarray(rgb))[..., 0])
    raise ValueError(f"cannot take lightness of pixels shaped {pixels.shape}")
