"""One image file read into pixels: regular files only, cut-off JPEGs and PNGs refused, decoded by OpenCV.

Every problem is raised as a `FrameError` whose message is the reason in words (the sources make it a skip).
"""

from __future__ import annotations

import logging
import os
import stat
import struct
from pathlib import Path

import cv2
import numpy as np

from ..config import physical_memory
from ..errors import FrameError
from ..frames import display_name

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})


def file_kind(mode: int) -> str:
    """What a file of stat mode `mode` that is not a regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder (subfolders are not read)"
    if stat.S_ISFIFO(mode):
        return "not a regular file (a named pipe)"
    if stat.S_ISSOCK(mode):
        return "not a regular file (a socket)"
    return "not a regular file (a device)"


def truncation(data: np.ndarray) -> str | None:
    """Why encoded image bytes are cut short, judged from the container's signature and markers, or None.
    (Some decoders return a half-grey picture for a cut-off JPEG; a frame like that must not be used.)"""
    head = data[:8].tobytes()
    if head[:2] == b"\xff\xd8":
        raw = data.tobytes()
        # Entropy-coded data cannot hold FF D9 (FF is stuffed), so the image's end marker follows its last scan;
        # a JPEG cut before any scan has no end marker at all.
        if raw.rfind(b"\xff\xd9") < max(raw.rfind(b"\xff\xda"), 0):
            return "truncated JPEG (the file ends before its end-of-image marker)"
    elif head == b"\x89PNG\r\n\x1a\n" and data.tobytes().rfind(b"IEND") < 0:
        return "truncated PNG (the file ends before its IEND chunk)"
    return None


#: how the files OpenCV decodes begin (PNG, JPEG, TIFF and BigTIFF both ways, BMP, WebP, JPEG 2000 file and
#: codestream, PNM, PFM, Sun raster, OpenEXR, Radiance HDR, GIF): a file that begins otherwise is refused before it
#: is read whole
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # TIFF, BigTIFF; little-, big-endian
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8", *TIFF_SIGNATURES, b"BM", b"RIFF", b"\x00\x00\x00\x0cjP",
                    b"\xff\x4f\xff\x51", b"P1", b"P2", b"P3", b"P4", b"P5", b"P6", b"P7", b"PF", b"Pf",
                    b"\x59\xa6\x6a\x95", b"\x76\x2f\x31\x01", b"#?", b"GIF8")
#: memory a render needs a decoded pixel, at most (the decoded image, its L, the RGB out and the encoder's copy;
#: an 8192x8192 PNG took 1.36 GB)
BYTES_PER_PIXEL = 24


def header_problem(head: bytes, physical_memory: int | None) -> str | None:
    """Why a file that begins with `head` (its first 32 bytes) is not read further, or None: no image's signature,
    or a PNG whose declared size this machine could not hold (a small file can declare a huge picture)."""
    if not head.startswith(IMAGE_SIGNATURES):
        return "not a decodable image"
    if head.startswith(b"\x89PNG") and len(head) >= 24 and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        if physical_memory is not None and width * height * BYTES_PER_PIXEL > physical_memory:
            return (f"too large to decode: a {width}x{height} picture needs more than this machine's "
                    f"{physical_memory / 2**30:.3g} GiB of memory")
    return None


def _decode(data: np.ndarray) -> np.ndarray:
    """Encoded image bytes decoded by OpenCV; raises FrameError: why they do not decode."""
    try:
        pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # OpenCV refuses oversized headers with an assertion, not with None
        if "CV_IO_MAX_IMAGE" in exc.err:
            raise FrameError("too large to decode (over OpenCV's limit CV_IO_MAX_IMAGE_PIXELS, 2^30 pixels by "
                             "default)") from exc
        raise FrameError(f"not a decodable image ({exc.err.strip()})") from exc
    except MemoryError as exc:
        raise FrameError("too large to decode in the memory available") from exc
    if pixels is None:
        raise FrameError("not a decodable image")
    return pixels


#: TIFF pages counted at most (a chain of directories that loops or runs on is not followed further)
MAX_TIFF_PAGES = 10_000


def tiff_pages(data: np.ndarray) -> int:
    """How many images (directories) a TIFF or BigTIFF holds, by following its chain of directory offsets; 0 for
    other files. A chain that leaves the file or loops ends the count there."""
    head = data[:4].tobytes()
    if len(data) < 16 or head not in TIFF_SIGNATURES:
        return 0
    raw = memoryview(np.ascontiguousarray(data)).cast("B")  # read in place, not copied
    order = "<" if head[:2] == b"II" else ">"
    big = head[2:4] in (b"+\x00", b"\x00+")
    # (offset format, where the first offset is, entry count format, bytes an entry)
    offset_format, first, count_format, entry = ("Q", 8, "Q", 20) if big else ("I", 4, "H", 12)
    offset_size, count_size = struct.calcsize(offset_format), struct.calcsize(count_format)
    (offset,) = struct.unpack_from(order + offset_format, raw, first)
    pages, seen = 0, set()
    while offset and offset not in seen and pages < MAX_TIFF_PAGES:
        if offset + count_size > len(raw):
            break
        seen.add(offset)
        (entries,) = struct.unpack_from(order + count_format, raw, offset)
        pages += 1
        following = offset + count_size + entries * entry
        if following + offset_size > len(raw):
            break
        (offset,) = struct.unpack_from(order + offset_format, raw, following)
    return pages


def read_image(path: Path) -> np.ndarray:
    """Decode an image file to RGB(A) or grey pixels (uint8/uint16); raises FrameError: why it cannot be used.

    Only regular files are read: a named pipe, a device or a folder is refused without waiting on it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise FrameError(f"cannot read: {exc.strerror or exc}") from exc
    try:
        with open(fd, "rb", buffering=0) as file:
            mode = os.fstat(file.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise FrameError(file_kind(mode))
            head = file.read(32)
            problem = header_problem(head, physical_memory()) if head else None
            if problem:
                raise FrameError(problem)
            data = np.concatenate([np.frombuffer(head, np.uint8), np.fromfile(file, np.uint8)])
    except OSError as exc:
        raise FrameError(f"cannot read: {exc.strerror or exc}") from exc
    except MemoryError as exc:
        raise FrameError("too large to read into the memory available") from exc
    if data.size == 0:
        raise FrameError("empty file")
    cut = truncation(data)
    if cut is not None:
        raise FrameError(cut)
    pixels = _decode(data)
    pages = tiff_pages(data)
    if pages > 1:  # OpenCV decodes the first; a folder of frames is one picture a file
        log.warning("%s holds %d images: only the first is coloured (give each its own file to colour them all)",
                    display_name(path.name), pages)
    if pixels.dtype not in (np.uint8, np.uint16):
        raise FrameError(f"unsupported pixel type {pixels.dtype}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    elif pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        order = [2, 1, 0, 3][: pixels.shape[2]]  # OpenCV decodes BGR(A)
        pixels = pixels[..., order]
    elif pixels.ndim != 2:
        raise FrameError(f"unsupported image layout {pixels.shape}")
    return pixels


def not_an_image(path: Path) -> str:
    """Why `path`, whose suffix is no image's, is not read."""
    try:
        if path.is_dir():
            return file_kind(stat.S_IFDIR)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    return f"not an image file (suffix {path.suffix or 'none'!r})"
