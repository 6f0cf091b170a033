"""RGB frames into the YUV planes a video encoder takes, by the matrix the video is tagged with.

The engine converts in Numba kernels (faster than FFmpeg's scaler, `oppy-bench encode`) and the sink writes the
matching colour tags, so a player that honours them shows the engine's RGB: BT.709 for frames of HD size (720
lines or 1280 columns and up), BT.601 below, where players that ignore tags guess the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
from numba import prange

from .parallel import parallel_kernel


@dataclass(frozen=True)
class ColourStandard:
    """A YUV matrix (luma weights of R and B) in limited range, and the tags (FFmpeg's enum values) that say so."""

    name: str
    kr: float
    kb: float
    #: AVColorSpace: 1 BT.709, 6 SMPTE 170M (BT.601 525-line; the same matrix as 625-line BT.470 BG)
    colorspace: int

    def matrix(self) -> np.ndarray:
        """3x3 float32 rows Y, U, V of code values per 8-bit R, G, B (limited range: Y 16..235, U V 16..240)."""
        kr, kb = self.kr, self.kb
        kg = 1.0 - kr - kb
        luma = np.array([kr, kg, kb]) * 219 / 255
        u = np.array([-kr, -kg, 1 - kb]) / (2 * (1 - kb)) * 224 / 255
        v = np.array([1 - kr, -kg, -kb]) / (2 * (1 - kr)) * 224 / 255
        return np.stack([luma, u, v]).astype(np.float32)


BT601 = ColourStandard("bt601", 0.299, 0.114, 6)
BT709 = ColourStandard("bt709", 0.2126, 0.0722, 1)
#: tags common to both: the RGB is sRGB, whose primaries are BT.709's, with the BT.709 transfer tag that
#: SDR video carries (FFmpeg's AVColorPrimaries / AVColorTransferCharacteristic 1), in limited (MPEG) range (1)
PRIMARIES, TRANSFER, LIMITED_RANGE = 1, 1, 1


def colour_standard(width: int, height: int) -> ColourStandard:
    """The matrix for a frame size: BT.709 from HD up (720 lines or 1280 columns), BT.601 below: what players
    assume of untagged video, so that those that ignore the tags show the same colours as those that read them."""
    return BT709 if height >= 720 or width >= 1280 else BT601


@parallel_kernel(fastmath=True)
def _yuv420p_kernel(rgb, matrix, luma, u_plane, v_plane):
    # each plane is C-ordered rows at least as long as the frame's width (Y) or half of it (U, V): a PyAV frame's
    # rows may run on past that, padded to its alignment
    height, width = rgb.shape[0], rgb.shape[1]
    half = width // 2
    yr, yg, yb = matrix[0, 0], matrix[0, 1], matrix[0, 2]
    ur, ug, ub = matrix[1, 0] / 4, matrix[1, 1] / 4, matrix[1, 2] / 4
    vr, vg, vb = matrix[2, 0] / 4, matrix[2, 1] / 4, matrix[2, 2] / 4
    for row in prange(height // 2):
        u_line = u_plane[row]
        v_line = v_plane[row]
        for y in range(2 * row, 2 * row + 2):  # luma: plain arithmetic along the row, which vectorises
            line = luma[y]
            for x in range(width):
                line[x] = np.uint8(yr * rgb[y, x, 0] + yg * rgb[y, x, 1] + yb * rgb[y, x, 2] + np.float32(16.5))
        for pair in range(half):  # chroma of the mean of each 2x2 block (chroma is affine in RGB)
            r = g = b = np.float32(0.0)
            for y in range(2 * row, 2 * row + 2):
                for x in range(2 * pair, 2 * pair + 2):
                    r += rgb[y, x, 0]
                    g += rgb[y, x, 1]
                    b += rgb[y, x, 2]
            u_line[pair] = np.uint8(ur * r + ug * g + ub * b + np.float32(128.5))
            v_line[pair] = np.uint8(vr * r + vg * g + vb * b + np.float32(128.5))


@parallel_kernel(fastmath=True)
def _yuv444p_kernel(rgb, matrix, luma, u_plane, v_plane):
    height, width = rgb.shape[0], rgb.shape[1]
    yr, yg, yb = matrix[0, 0], matrix[0, 1], matrix[0, 2]
    ur, ug, ub = matrix[1, 0], matrix[1, 1], matrix[1, 2]
    vr, vg, vb = matrix[2, 0], matrix[2, 1], matrix[2, 2]
    for y in prange(height):
        y_line, u_line, v_line = luma[y], u_plane[y], v_plane[y]
        for x in range(width):
            r, g, b = np.float32(rgb[y, x, 0]), np.float32(rgb[y, x, 1]), np.float32(rgb[y, x, 2])
            y_line[x] = np.uint8(yr * r + yg * g + yb * b + np.float32(16.5))
            u_line[x] = np.uint8(ur * r + ug * g + ub * b + np.float32(128.5))
            v_line[x] = np.uint8(vr * r + vg * g + vb * b + np.float32(128.5))


def _checked_rgb(rgb: np.ndarray, pix_fmt: str) -> np.ndarray:
    """`rgb` as the conversion to `pix_fmt` takes it (one of `config.PIXEL_FORMATS`: yuv444p, else 4:2:0)."""
    half_chroma = pix_fmt != "yuv444p"
    odd = half_chroma and (rgb.shape[0] % 2 or rgb.shape[1] % 2)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or odd:
        raise ValueError(f"want HxWx3 uint8 RGB{' with even sides' if half_chroma else ''}, not "
                         f"{rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb)


def rgb_to_yuv(rgb: np.ndarray, standard: ColourStandard, pix_fmt: str = "yuv420p") -> np.ndarray:
    """HxWx3 uint8 RGB -> planar YUV as FFmpeg lays it out (Y, then U, then V): for yuv420p an (H*3/2)xW uint8
    array (even sides; each chroma sample from the mean of its 2x2 pixels, chroma being affine in RGB), for
    yuv444p a (3*H)xW one. `standard`'s matrix, limited range; FFmpeg's scaler makes the same to rounding."""
    rgb = _checked_rgb(rgb, pix_fmt)
    height, width = rgb.shape[:2]
    if pix_fmt == "yuv444p":
        out = np.empty((3 * height, width), np.uint8)
        _yuv444p_kernel(rgb, standard.matrix(), out[:height], out[height:2 * height], out[2 * height:])
        return out
    out = np.empty((height * 3 // 2, width), np.uint8)
    flat, luma, quarter = out.reshape(-1), height * width, (height // 2) * (width // 2)
    chroma = flat[luma:luma + quarter], flat[luma + quarter:]
    _yuv420p_kernel(rgb, standard.matrix(), out[:height],
                    *(plane.reshape(height // 2, width // 2) for plane in chroma))
    return out


def tag(frame: av.VideoFrame | av.VideoCodecContext, standard: ColourStandard
        ) -> av.VideoFrame | av.VideoCodecContext:
    """`frame` (or an encoder's context, which writes the tags into the stream) marked as `standard`'s limited-range
    YUV, so FFmpeg reads it back and players show it so."""
    frame.colorspace, frame.color_range = standard.colorspace, LIMITED_RANGE
    frame.color_primaries, frame.color_trc = PRIMARIES, TRANSFER
    return frame


def rgb_to_yuv_frame(rgb: np.ndarray, standard: ColourStandard, pix_fmt: str = "yuv420p") -> av.VideoFrame:
    """`rgb_to_yuv` written straight into the planes of a new PyAV frame, tagged with `standard`: no array in
    between to copy (`VideoFrame.from_ndarray` took about 1 ms a 1024x1024 frame for that copy on 2 cores)."""
    rgb = _checked_rgb(rgb, pix_fmt)
    if pix_fmt == "yuv444p":
        # for 4:4:4 the kernel writing PyAV's three plane buffers took 1.7x as long as writing one array that
        # PyAV then copies in (`oppy-bench encode --pix-fmt yuv444p`, 1024x1024 on 2 cores): copied here
        planes = rgb_to_yuv(rgb, standard, pix_fmt).reshape(3, *rgb.shape[:2])
        return tag(av.VideoFrame.from_ndarray(planes, format=pix_fmt), standard)
    frame = av.VideoFrame(rgb.shape[1], rgb.shape[0], pix_fmt)
    _yuv420p_kernel(rgb, standard.matrix(), *(np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                                              for plane in frame.planes))
    return tag(frame, standard)
