"""Where colour frames go: an H.264 video written as a stream by PyAV, or a folder of PNG images.

Sinks are context managers; a video is written to a temporary name beside the target and renamed on success.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import OppyError

log = logging.getLogger(__name__)

CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def _even_sized(rgb: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: repeat the last row / column where a side is odd."""
    height, width = rgb.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return rgb
    return np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def check_output(path: Path, overwrite: bool) -> None:
    """Refuse an existing output unless told to overwrite it, and an output folder that does not exist."""
    if path.exists() and not overwrite and not (path.is_dir() and not any(path.iterdir())):
        raise OppyError(f"output {str(path)!r} already exists: pass --overwrite (overwrite=True) to replace it")
    if not path.parent.exists():
        raise OppyError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist")


class VideoSink:
    """An H.264 (or other codec) video, opened at the first frame, whose size it takes.

    Frames of another size are scaled to the first frame's size. Odd sizes are padded by one pixel.
    """

    def __init__(self, path: str | Path, fps: float = 5.0, crf: int = 20, codec: str = "libx264",
                 preset: str = "veryfast", pix_fmt: str = "yuv420p"):
        self.path = Path(path)
        self.format = CONTAINER_FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise OppyError(f"unknown video suffix {self.path.suffix!r}: use one of {', '.join(CONTAINER_FORMATS)}")
        self.fps, self.crf, self.codec, self.preset, self.pix_fmt = fps, crf, codec, preset, pix_fmt
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the frames given
        self._container = None
        self._stream = None

    def _open(self, width: int, height: int) -> None:
        try:
            container = av.open(str(self.partial), "w", format=self.format)
        except av.FFmpegError as exc:
            raise OppyError(f"cannot write video {str(self.path)!r}: {exc}") from exc
        try:
            stream = container.add_stream(self.codec, rate=Fraction(self.fps).limit_denominator(1001))
        except (av.FFmpegError, ValueError) as exc:  # an unknown codec is a ValueError
            container.close()
            self.partial.unlink(missing_ok=True)
            raise OppyError(f"cannot encode video with codec {self.codec!r}: {exc}") from exc
        self._container = container
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = self.pix_fmt
        if self.codec.startswith("libx264") or self.codec.startswith("libx265"):
            stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = stream
        self.size = (width, height)
        if width % 2 or height % 2:
            log.info("%dx%d is odd: the video is padded to %dx%d", width, height, stream.width, stream.height)

    def write(self, rgb: np.ndarray, name: str = "") -> None:
        """Encode one HxWx3 uint8 RGB frame."""
        height, width = rgb.shape[:2]
        if self._container is None:
            self._open(width, height)
        elif (width, height) != self.size:
            log.warning("%s is %dx%d; scaled to the video's %dx%d", name or f"frame {self.frames}",
                        width, height, *self.size)
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(_even_sized(rgb), format="rgb24")
        frame.pts = self.frames
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self, complete: bool = True) -> None:
        """Flush the encoder; on success move the finished file to its name, else drop it."""
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()
            self._container = None
        if complete:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None)


class ImageFolderSink:
    """One PNG per frame in a folder, named after the source frame."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.frames = 0

    def write(self, rgb: np.ndarray, name: str = "") -> None:
        """Write one HxWx3 uint8 RGB frame as `<name stem>.png` (or its index where it has no name)."""
        if self.frames == 0:
            self.folder.mkdir(exist_ok=True)
        stem = Path(name).stem if name else f"{self.frames:06d}"
        ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
        if not ok:
            raise OppyError(f"cannot encode frame {name or self.frames} as PNG")
        data.tofile(self.folder / f"{stem}.png")
        self.frames += 1

    def close(self, complete: bool = True) -> None:
        """Nothing is buffered: every frame is on disk once written."""

    def __enter__(self) -> ImageFolderSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None)


def open_sink(path: str | Path, fps: float, crf: int, codec: str, preset: str) -> VideoSink | ImageFolderSink:
    """A video sink for a path with a video suffix, else an image-folder sink."""
    path = Path(path)
    if path.suffix.lower() in CONTAINER_FORMATS:
        return VideoSink(path, fps=fps, crf=crf, codec=codec, preset=preset)
    if path.suffix:
        raise OppyError(
            f"output {str(path)!r}: give a video ({', '.join(CONTAINER_FORMATS)}) or a folder name without suffix"
        )
    return ImageFolderSink(path)
