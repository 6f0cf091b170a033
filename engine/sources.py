"""Where frames come from: a folder of images in natural order, or a video file decoded by PyAV.

A source yields `SourceFrame`s in order; a file it cannot read becomes a `Skipped` event, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import OppyError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"})


@dataclass(frozen=True)
class SourceFrame:
    """One decoded frame: `pixels` is HxW (grey) or HxWx3 / HxWx4 (RGB / RGBA), uint8 or uint16."""

    index: int
    name: str
    pixels: np.ndarray


@dataclass(frozen=True)
class Skipped:
    """An input that could not be used, and why."""

    name: str
    reason: str


def natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: `sol9` before `sol10`."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def read_image(path: Path) -> np.ndarray | str:
    """Decode an image file to RGB(A) or grey pixels (uint8/uint16), or return why it cannot be used."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if data.size == 0:
        return "empty file"
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        return "not a decodable image"
    if pixels.dtype not in (np.uint8, np.uint16):
        return f"unsupported pixel type {pixels.dtype}"
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    elif pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        order = [2, 1, 0, 3][: pixels.shape[2]]  # OpenCV decodes BGR(A)
        pixels = pixels[..., order]
    elif pixels.ndim != 2:
        return f"unsupported image layout {pixels.shape}"
    return pixels


class ImageFolder:
    """The images of one folder (not recursive), naturally sorted; hidden files and folders are ignored."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise OppyError(f"input folder {str(self.folder)!r} does not exist")
        entries = [p for p in self.folder.iterdir() if not p.name.startswith(".")]
        self.files = sorted((p for p in entries if not p.is_dir()), key=lambda p: natural_key(p.name))

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[SourceFrame | Skipped]:
        index = 0
        for path in self.files:
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                yield Skipped(path.name, f"not an image file (suffix {path.suffix or 'none'!r})")
                continue
            pixels = read_image(path)
            if isinstance(pixels, str):
                yield Skipped(path.name, pixels)
                continue
            yield SourceFrame(index, path.name, pixels)
            index += 1


class VideoFile:
    """The frames of a video file's first video stream, decoded by PyAV as RGB."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise OppyError(f"{str(self.path)!r} has no video stream")
                self._frames = container.streams.video[0].frames or None
        except av.FFmpegError as exc:
            raise OppyError(f"cannot open video {str(self.path)!r}: {exc}") from exc

    def __len__(self) -> int:
        return self._frames or 0

    def __iter__(self) -> Iterator[SourceFrame | Skipped]:
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                yield SourceFrame(index, f"{self.path.stem}#{index:06d}", frame.to_ndarray(format="rgb24"))


def open_source(path: str | Path) -> ImageFolder | VideoFile:
    """The source for an input path: a folder of images or a video file."""
    path = Path(path)
    if path.is_dir():
        return ImageFolder(path)
    if not path.exists():
        raise OppyError(f"input {str(path)!r} does not exist: give a folder of images or a video file")
    return VideoFile(path)
