"""Where frames come from: a folder of images in natural order, a video file decoded by PyAV, or raw grey
frames from a pipe (stdin) or a file.

A source yields `SourceFrame`s in order; an input it cannot use becomes a `Skipped` event naming the reason,
never an exception.
"""

from __future__ import annotations

import io
import os
import select
import stat
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from ..errors import FrameError, OppyError
from ..frames import FrameTiming, Skipped, display_name, natural_key
from .facts import ProductInfo, from_name
from .images import IMAGE_SUFFIXES, not_an_image, read_image
from .pds import PDS_SUFFIXES, read_product
from .stretch import Levels

STDIN = "-"
#: PyAV frame formats taken as they are; any other format is converted to RGB
_GREY_FORMATS = frozenset({"gray", "gray8", "gray16le", "gray16be"})
#: how often a blocked read of a pipe looks whether it has been cancelled
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class SourceFrame:
    """One decoded frame: `pixels` is HxW (grey) or HxWx3 / HxWx4 (RGB / RGBA), uint8 or uint16; `info`, what its
    label or product id says."""

    index: int
    name: str
    pixels: np.ndarray
    timing: FrameTiming | None = None
    info: ProductInfo | None = None


def frame_pixels(frame: av.VideoFrame) -> np.ndarray:
    """A PyAV frame's pixels: HxW uint8/uint16 for a grey format, else HxWx3 uint8 RGB."""
    if frame.format.name in _GREY_FORMATS:
        return frame.to_ndarray()
    return frame.to_ndarray(format="rgb24")


def decode_threads(requested: int = 0) -> int:
    """How many threads decode image files: `requested`, or for 0 one per core up to 8 (more rarely pays: the
    other stages need cores too)."""
    return requested if requested > 0 else max(1, min(8, os.cpu_count() or 1))


def read_entry(path: Path) -> tuple[np.ndarray, ProductInfo]:
    """One entry of a folder as a frame and what its label or product id says: an image file (`read_image`), a
    PDS3 product (`pds.read_product`), or anything else (a skip).

    raises FrameError: why the entry cannot be used as a frame."""
    suffix = path.suffix.lower()
    if suffix in PDS_SUFFIXES:
        return read_product(path)
    if suffix not in IMAGE_SUFFIXES:
        raise FrameError(not_an_image(path))
    return read_image(path), from_name(path.name)


def list_entries(folder: Path) -> list[Path]:
    """The entries of `folder` in natural order, hidden ones (a leading dot) aside; a detached label (`X.LBL` or
    `X.IMG.LBL`) beside its product's data (`X.IMG`, any case) is part of that product, not an entry of its own."""
    try:
        names = [entry.name for entry in os.scandir(folder) if not entry.name.startswith(".")]
    except OSError as exc:
        raise OppyError(f"cannot list input folder {display_name(str(folder))!r}: {exc.strerror or exc}: check "
                        "that you may read it") from exc
    data_names = {name.casefold() for name in names if Path(name).suffix.lower() == ".img"}
    data_stems = {Path(name).stem for name in data_names}

    def part_of_a_product(name: str) -> bool:  # X.LBL or X.IMG.LBL beside X.IMG
        stem = Path(name).stem.casefold()
        return Path(name).suffix.lower() == ".lbl" and (stem in data_stems or stem in data_names)

    entries = [folder / name for name in names if not part_of_a_product(name)]
    return sorted(entries, key=lambda path: natural_key(path.name))


class ImageFolder:
    """The entries of one folder (not recursive), naturally sorted (`list_entries`); hidden ones are ignored.

    Every other entry is either a frame or a `Skipped` with its reason: a subfolder, a file that is not an
    image, cannot be read or does not decode. Names that are not UTF-8 are shown with `\\xNN` escapes.
    With `files` (entries of the folder, e.g. one chunk of its listing), those are taken in the order given and
    the folder is not listed; `first_index` is then the first frame's index (where the chunk's frames begin).

    With `threads` > 1, that many threads read and decode files ahead (OpenCV releases the GIL while it
    decodes), at most two per thread in advance; frames still come out in order. `levels`, where given, maps every
    frame's values the same way (`stretch.Levels`, `--stretch archive`).
    """

    #: (width, height) of every frame where known before reading any: not for images, each of its own size
    frame_size: tuple[int, int] | None = None

    def __init__(self, folder: str | Path, files: Iterable[str | Path] | None = None, threads: int = 1,
                 levels: Levels | None = None, first_index: int = 0):
        self.threads, self.levels, self.first_index = threads, levels, first_index
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise OppyError(f"input folder {str(self.folder)!r} does not exist")
        self.files = [self.folder / name for name in files] if files is not None else list_entries(self.folder)

    def __len__(self) -> int:
        return len(self.files)

    def _read(self, path: Path) -> tuple[np.ndarray, ProductInfo] | Skipped:
        """The entry's frame and what it says, or the skip that takes its place."""
        try:
            pixels, info = read_entry(path)
        except FrameError as exc:
            return Skipped(display_name(path.name), str(exc))
        return (pixels if self.levels is None else self.levels.apply(pixels)), info

    def _decoded(self) -> Iterator[tuple[Path, tuple[np.ndarray, ProductInfo] | Skipped]]:
        """(file, its pixels or its skip) in order, decoded `threads` at a time."""
        if self.threads <= 1:
            for path in self.files:
                yield path, self._read(path)
            return
        with ThreadPoolExecutor(self.threads, thread_name_prefix="oppy-decode") as pool:
            ahead: deque = deque()
            try:
                for path in self.files:
                    ahead.append((path, pool.submit(self._read, path)))
                    if len(ahead) >= 2 * self.threads:
                        path, pixels = ahead.popleft()
                        yield path, pixels.result()
                while ahead:
                    path, pixels = ahead.popleft()
                    yield path, pixels.result()
            finally:  # stopped early: what has not started is dropped; the pool waits for what has
                for _, pixels in ahead:
                    pixels.cancel()

    def __iter__(self) -> Iterator[SourceFrame | Skipped]:
        # a frame's index is its entry's place in the listing (skips count), so that a chunk of a larger listing
        # counts on from where its entries begin
        for index, (path, read) in enumerate(self._decoded(), self.first_index):
            if isinstance(read, Skipped):
                yield read
                continue
            yield SourceFrame(index, display_name(path.name), read[0], info=read[1])


class VideoFile:
    """The frames of a video file's first video stream, decoded by PyAV (RGB, or grey as stored), each with its
    timestamp. A video that ends before its header says it does (a file cut short) ends in a `Skipped`
    (`ended_early`), as one whose decoding fails does."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise OppyError(f"{str(self.path)!r} has no video stream")
                stream = container.streams.video[0]
                self._frames = stream.frames or None
                #: (width, height) its header declares, or None
                self.frame_size = (stream.width, stream.height) if stream.width and stream.height else None
                first = next((packet for packet in container.demux(stream) if packet.size), None)
                untimed = first is not None and first.pts is None and first.dts is None
                #: the stream's frame rate (None where nothing says): its average where its packets carry times;
                #: where they carry none (an elementary H.264 stream), the rate its codec declares, not the
                #: demuxer's default of 25
                self.rate: Fraction | None = ((stream.codec_context.framerate or stream.guessed_rate) if untimed
                                              else stream.average_rate or stream.guessed_rate) or None
        except av.FFmpegError as exc:
            raise OppyError(f"cannot open video {str(self.path)!r}: {exc}") from exc

    def __len__(self) -> int:
        return self._frames or 0

    def __iter__(self) -> Iterator[SourceFrame | Skipped]:
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            index, last = 0, None
            try:
                for last in container.decode(stream):
                    yield SourceFrame(index, f"{self.path.stem}#{index:06d}", frame_pixels(last),
                                      FrameTiming(last.pts, last.time_base))
                    index += 1
            except av.FFmpegError as exc:  # a damaged stream: report where it broke, keep what was decoded
                yield Skipped(f"{self.path.stem}#{index:06d}", f"video decoding stopped: {exc}")
                return
            if why := ended_early(stream, index, last, self.rate):
                yield Skipped(f"{self.path.stem}#{index:06d}", why)


def declared_end(stream: av.video.stream.VideoStream) -> Fraction | None:
    """When (seconds on its own clock) a video stream's header says it ends, where it says so of this stream alone:
    Matroska's DURATION tag of the track (FFmpeg writes the time of its end), or the track's start and duration in a
    container that indexes its frames (MP4, MOV: a frame count declared). None otherwise: FFmpeg fills in a
    stream's duration from the whole file's, audio included."""
    tag = stream.metadata.get("DURATION")  # HH:MM:SS.nnnnnnnnn
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + Fraction(seconds)
        except ValueError:
            return None
    if not (stream.frames and stream.duration):
        return None
    return ((stream.start_time or 0) + stream.duration) * stream.time_base


def ended_early(stream: av.video.stream.VideoStream, decoded: int, last: av.VideoFrame | None,
                rate: Fraction | None) -> str | None:
    """Why a video that gave `decoded` frames (`last` the final one) without a decoding error ended early, or None:
    FFmpeg stops without an error where a file was cut short. Judged by time, not by the frames declared, since an
    MP4 trimmed by its edit list declares frames it never shows."""
    end, shown = declared_end(stream), _time_shown(last, rate)
    if end is None or not shown or (last is not None and (last.pts is None or last.time_base is None)):
        return None  # nothing to judge by
    ended = last.pts * last.time_base + shown if last is not None else (stream.start_time or 0) * stream.time_base
    if end - ended <= shown / 2:  # half a frame of slack: containers round where a stream ends
        return None
    if stream.frames > decoded:
        count = f"{decoded} of its {stream.frames} declared frames"
    else:
        count = f"{decoded} frame{'s' if decoded != 1 else ''}"
    return f"the video ended after {count}, at {float(ended):.3g} s of the {float(end):.3g} s it declares (truncated?)"


def _time_shown(frame: av.VideoFrame | None, rate: Fraction | None) -> Fraction:
    """How long a video's frame is shown: its own duration, else one frame at the video's average `rate`, else 0
    (not known)."""
    duration = getattr(frame, "duration", None)  # not every PyAV that pyproject allows has it
    if duration and frame.time_base is not None:
        return duration * frame.time_base
    return 1 / Fraction(rate) if rate else Fraction(0)


class RawFrames:
    """Raw 8-bit grey frames of one size, back to back without a header (what `ffmpeg -f rawvideo
    -pix_fmt gray -` writes), from a binary stream such as stdin or from a file.

    Each frame is `height` x `width` bytes and comes out as an HxW uint8 frame. A short frame at the end of
    the input is a `Skipped`. `cancel()` (called by the pipeline when it stops) ends a read that is waiting
    on a pipe, so a stalled writer cannot hang the engine.
    """

    def __init__(self, source: BinaryIO | str | Path, width: int, height: int, name: str | None = None):
        if width < 1 or height < 1:
            raise OppyError(f"raw frames must be at least 1x1, not {width}x{height}: check --input-size")
        self.source = source
        self.width, self.height = width, height
        self.frame_bytes = width * height
        self.frame_size = (width, height)
        self.name = name or (display_name(Path(source).name) if isinstance(source, (str, Path)) else "stdin")
        self._cancelled = threading.Event()

    def __len__(self) -> int:
        """Frames in a file, counting a short one at its end; 0 (unknown) for a pipe."""
        try:
            info = os.stat(self.source) if isinstance(self.source, (str, Path)) else os.fstat(self.source.fileno())
        except (OSError, AttributeError, io.UnsupportedOperation):
            return 0
        return -(-info.st_size // self.frame_bytes) if stat.S_ISREG(info.st_mode) else 0

    def cancel(self) -> None:
        """Stop reading: a read waiting on a pipe returns, and iteration ends."""
        self._cancelled.set()

    def __iter__(self) -> Iterator[SourceFrame | Skipped]:
        if isinstance(self.source, (str, Path)):
            try:
                with open(self.source, "rb", buffering=0) as file:
                    yield from self._frames(file)
            except OSError as exc:
                raise OppyError(f"cannot read raw frames from {str(self.source)!r}: {exc.strerror or exc}") from exc
        else:
            yield from self._frames(self.source)

    def _frames(self, stream: BinaryIO) -> Iterator[SourceFrame | Skipped]:
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            fd = None
        index = 0
        while True:
            frame = bytearray(self.frame_bytes)
            got = self._fill(stream, fd, memoryview(frame))
            if got == 0 or self._cancelled.is_set():
                return
            name = f"{self.name} frame {index}"
            if got < self.frame_bytes:
                yield Skipped(name, f"incomplete frame at the end of the input: {got} of {self.frame_bytes} "
                                    f"bytes ({self.width}x{self.height}); check --input-size")
                return
            yield SourceFrame(index, name, np.frombuffer(frame, np.uint8).reshape(self.height, self.width))
            index += 1

    def _fill(self, stream: BinaryIO, fd: int | None, buffer: memoryview) -> int:
        """Read until `buffer` is full; fewer bytes only at the end of the input or once cancelled."""
        got = 0
        while got < len(buffer) and not self._cancelled.is_set():
            if fd is None:
                chunk = stream.read(len(buffer) - got)
            elif _wait_readable(fd):
                chunk = os.read(fd, len(buffer) - got)
            else:
                continue
            if not chunk:
                break
            buffer[got : got + len(chunk)] = chunk
            got += len(chunk)
        return got


def _wait_readable(fd: int) -> bool:
    """Whether `fd` has data (or its end) within one poll interval; True where select cannot watch it."""
    try:
        return bool(select.select([fd], [], [], _POLL_SECONDS)[0])
    except (OSError, ValueError):  # select on a pipe is not supported everywhere (Windows): read blocking
        return True


def open_source(path: str | Path, input_size: tuple[int, int] | None = None,
                threads: int = 1) -> ImageFolder | VideoFile | RawFrames:
    """The source for an input: a folder of images (decoded by `threads` threads), a video file, or, with
    `input_size` (width, height), raw 8-bit grey frames from a file or, for `-`, from stdin."""
    if str(path) == STDIN:
        if input_size is None:
            raise OppyError("reading frames from stdin (INPUT -) needs their size: pass --input-size WxH "
                            "(raw 8-bit grey frames, e.g. from ffmpeg -f rawvideo -pix_fmt gray -)")
        if sys.stdin is None or sys.stdin.isatty():
            raise OppyError("INPUT - reads raw frames from stdin, which is a terminal here: pipe frames in, e.g. "
                            "ffmpeg -i IN -f rawvideo -pix_fmt gray - | oppy-stream - OUT --input-size WxH")
        return RawFrames(sys.stdin.buffer, *input_size)
    path = Path(path)
    found = _input_status(path)
    if input_size is not None:
        if found is None or not stat.S_ISREG(found.st_mode):
            raise OppyError(f"--input-size reads raw frames from a file or stdin (-), and {str(path)!r} is not a "
                            "file: drop --input-size for a folder of images or a video")
        return RawFrames(path, *input_size)
    if found is None:
        raise OppyError(f"input {str(path)!r} does not exist: give a folder of images, a video file, or - with "
                        "--input-size for raw frames on stdin")
    if stat.S_ISDIR(found.st_mode):
        return ImageFolder(path, threads=threads)
    return VideoFile(path)


def _input_status(path: Path) -> os.stat_result | None:
    """What is at `path` (links followed), or None where nothing is; `OppyError` where it cannot be looked at (a
    name or path too long for the system, a link loop, a folder on the way that may not be searched)."""
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise OppyError(f"cannot open input {display_name(str(path))!r}: {getattr(exc, 'strerror', None) or exc}: "
                        "give the path of a folder of images or a video file you may read") from exc
