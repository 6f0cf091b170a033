"""Where colour frames go: a video (H.264 or H.265) written as a stream by PyAV, raw RGB24 frames, or PNGs.

Sinks are context managers. A file is written under a temporary name beside the target and renamed when
complete (`files.PartialFile`); an interrupted video is kept, playable, as `STEM.partial.SUFFIX`. `-` is stdout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, TypeVar

import av
import cv2
import numpy as np

from ..config import OUTPUT_FORMATS
from ..errors import OppyError
from ..frames import FrameTiming
from ..inputs.images import IMAGE_SUFFIXES
from ..kernels.yuv import colour_standard, tag
from . import files
from .encoders import EncoderChoice, EncoderFrame, choose_encoder, encoder_frame
from .files import STDOUT, Outcome, PartialFile, output_error, temporary_name
from .timing import DEFAULT_FPS, VideoClock

log = logging.getLogger(__name__)

CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# MP4 and MOV normally seek back to write their index; to a pipe they are written as fragments instead.
_STREAMING_OPTIONS = {"mp4": {"movflags": "frag_keyframe+empty_moov+default_base_moof"},
                      "mov": {"movflags": "frag_keyframe+empty_moov+default_base_moof"}}

#: Matroska stores times in milliseconds, whatever the frames' own time base
_MATROSKA_TIME_BASE = Fraction(1, 1000)

_S = TypeVar("_S", bound="_Sink")


class _Descriptor:
    """A file descriptor as the file object FFmpeg writes a stream to, raising every failed write. FFmpeg's own
    `pipe:` output drops the error of a fragmented MP4's last write (its trailer returns a size, not the error)."""

    def __init__(self, fd: int):
        self.fd = fd

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:  # a non-blocking stdout: wait until it takes more
                select.select([], [self.fd], [])
        return len(data)


class _Sink:
    """What every sink shares: a frame count, and closing as a context manager by how the block ended."""

    #: whether every frame must have the first frame's size (a video) or each may keep its own (images)
    one_size = True
    #: the work on an HxWx3 uint8 RGB frame that may be done ahead, in another thread than the writer's; `write`
    #: takes its result in place of the frame. None: this sink writes RGB as it is (a video converts it)
    prepare: Callable[[np.ndarray], EncoderFrame] | None = None
    #: the encoder a video is written with (`encoders.EncoderChoice`); None for frames written as they are
    encoder: EncoderChoice | None = None
    #: how a video's frames are timed, once the first is written: "input" (their own timestamps), "fps" (the rate
    #: asked for), "declared" (the rate an input without timestamps declares) or "default" (`DEFAULT_FPS`, for
    #: stills and raw frames); its (average) rate in frames/s; and that in words. None where the output has no timing.
    timing: str | None = None
    frame_rate: float | None = None
    timing_note: str | None = None

    def __init__(self) -> None:
        self.frames = 0

    def close(self, outcome: Outcome = "complete") -> str | None:
        """Finish the output; returns where the frames are (a path, or `-`), or None where none are."""
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close("complete")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close("interrupted")
        else:
            self.close("failed")

    def _check_size(self, rgb: np.ndarray | EncoderFrame, size: tuple[int, int] | None) -> tuple[int, int]:
        width, height = (rgb.width, rgb.height) if isinstance(rgb, EncoderFrame) else rgb.shape[1::-1]
        if size is not None and (width, height) != size:
            raise ValueError(f"frame is {width}x{height}, the output {size[0]}x{size[1]}: fit frames first")
        return width, height


class VideoSink(_Sink):
    """A video to a file or a binary stream such as stdout, opened at the first frame, whose size every frame must
    have. Odd sizes are padded by one pixel. The encoder and its settings are checked here, before any frame
    (`encoders.choose_encoder`: a hardware encoder this machine lacks falls back to libx264 / libx265, announced).

    Colour: the engine converts RGB to YUV by BT.709 from HD sizes up and BT.601 below, in limited range, and tags
    the stream so (`yuv.colour_standard`). Timing: with `fps`, frame i is shown at i / fps; with `fps=None`, frames
    keep the timestamps they come with (`FrameTiming`, a video input's, shifted to start at 0; variable frame rates
    kept) and frames without any are shown at `DEFAULT_FPS`. `container` is an FFmpeg muxer name; by default it
    follows the file's suffix (MP4 for a stream)."""

    def __init__(self, path: str | Path | BinaryIO, fps: float | None = DEFAULT_FPS, crf: int = 20,
                 codec: str = "libx264", preset: str = "veryfast", pix_fmt: str = "yuv420p",
                 container: str | None = None, source_rate: Fraction | None = None, replace: bool = True,
                 threads: int = 0):
        super().__init__()
        self.encoder = choose_encoder(codec, crf, preset, pix_fmt)
        self.threads = threads
        if isinstance(path, (str, Path)):
            self.path: Path | None = Path(path)
            self.name = str(self.path)
            container = container or CONTAINER_FORMATS.get(self.path.suffix.lower())
            if container is None:
                raise OppyError(f"unknown video suffix {self.path.suffix!r}: use one of "
                                f"{', '.join(CONTAINER_FORMATS)}")
            self._partial: PartialFile | None = PartialFile(self.path, replace)
            self._out: BinaryIO | None = None
        else:
            self.path, self._partial, self._out, self.name = None, None, path, "stdout"
        self.format = container or "mp4"
        self.fps, self.pix_fmt, self.source_rate = fps, pix_fmt, source_rate
        self.size: tuple[int, int] | None = None  # (width, height) of the frames given
        self._clock: VideoClock | None = None
        self._container = None
        self._stream = None

    @property
    def partial(self) -> Path | None:
        """The temporary file the video is written to until it is finished (None for a stream)."""
        return self._partial.path if self._partial else None

    @property
    def timing(self) -> str | None:
        return self._clock.kind if self._clock else None

    @property
    def frame_rate(self) -> float | None:
        return float(self._clock.rate) if self._clock else None

    @property
    def timing_note(self) -> str | None:
        return self._clock.describe() if self._clock else None

    def _open(self, width: int, height: int, timing: FrameTiming | None) -> None:
        self.encoder.check_size(width, height)
        encoded = (width + width % 2, height + height % 2)  # 4:2:0 needs even sides: odd ones are padded
        if self._partial is not None:
            target, options = str(self._partial.path), {}
        else:
            target, options = self._out, _STREAMING_OPTIONS.get(self.format, {})
            with contextlib.suppress(AttributeError, OSError, ValueError):
                self._out.flush()
                target = _Descriptor(self._out.fileno())  # past Python's buffer, every error still raised
        self._clock = VideoClock(self.fps, timing, self.source_rate)
        if self.format == "matroska":
            self._clock.at_least(_MATROSKA_TIME_BASE)
        try:
            container = av.open(target, "w", format=self.format, options=options)
        except (OSError, av.FFmpegError) as exc:
            raise output_error(self.name, exc, 0) from exc
        try:
            stream = container.add_stream(self.encoder.codec, rate=self._clock.rate)
        except (av.FFmpegError, ValueError) as exc:
            container.close()
            if self._partial is not None:
                self._partial.finish("failed")
            raise OppyError(f"cannot encode video with codec {self.encoder.codec!r}: {exc}") from exc
        self._container = container
        stream.width, stream.height = encoded
        stream.pix_fmt = self.pix_fmt
        stream.codec_context.time_base = stream.time_base = self._clock.time_base
        standard = colour_standard(stream.width, stream.height)
        context = tag(stream.codec_context, standard)
        stream.options = dict(self.encoder.options)
        if self.encoder.codec in ("libx264", "libx265"):
            # frame threads (x264's default; PyAV asks for slice threads): faster after a few frames (oppy-bench encode)
            context.thread_type = "FRAME"
        context.thread_count = self.threads  # 0: the encoder's own choice
        self._stream = stream
        self.size = (width, height)
        log.info("encoding %dx%d %s with %s, %s colour, %s", width, height, self.pix_fmt, self.encoder.codec,
                 standard.name.upper().replace("BT", "BT."), self._clock.describe())
        if width % 2 or height % 2:
            log.info("%dx%d is odd: the video is padded to %dx%d", width, height, stream.width, stream.height)

    def prepare(self, rgb: np.ndarray) -> EncoderFrame:
        """The frame converted for the encoder (YUV by the engine's kernel, tagged), ready for `write`. The engine
        has its last stage do this, since in the writer's thread the conversion holds up the encoder's threads
        (`oppy-bench encode`)."""
        return encoder_frame(rgb, self.pix_fmt)

    def write(self, rgb: np.ndarray | EncoderFrame, name: str = "", timing: FrameTiming | None = None) -> None:
        """Encode one HxWx3 uint8 RGB frame (or its `prepare`d form) of the video's size (the first frame sets
        it), at its own timestamp where the video keeps them."""
        width, height = self._check_size(rgb, self.size)
        if self._container is None:
            self._open(width, height, timing)
        frame = (rgb if isinstance(rgb, EncoderFrame) else self.prepare(rgb)).frame
        frame.pts, frame.time_base = self._clock.stamp(self.frames, timing), self._clock.time_base
        try:
            self._container.mux(self._stream.encode(frame))
        except (OSError, av.FFmpegError) as exc:
            raise output_error(self.name, exc, self.frames) from exc
        self.frames += 1

    def close(self, outcome: Outcome = "complete") -> str | None:
        """Flush the encoder and finish the file: complete, kept as a playable partial video, or removed."""
        if self._container is None:
            return None
        container, self._container = self._container, None
        if outcome == "failed":
            with contextlib.suppress(OSError, av.FFmpegError):  # the error that failed the render is what counts
                container.close()
            if self._partial is not None:
                self._partial.finish("failed")
            return None
        try:
            container.mux(self._stream.encode(None))
            container.close()
        except (OSError, av.FFmpegError) as exc:
            with contextlib.suppress(OSError, av.FFmpegError):
                container.close()
            if self._partial is not None:
                self._partial.finish("failed")
            raise output_error(self.name, exc, self.frames) from exc
        return str(self._partial.finish(outcome)) if self._partial is not None else STDOUT


class RawVideoSink(_Sink):
    """Raw RGB24 frames, height x width x 3 bytes each, back to back without a header (what `ffmpeg -f rawvideo
    -pix_fmt rgb24 -s WxH -i -` reads), to a binary stream such as stdout or to a file. Every frame has the
    first frame's size, which is logged, since the reader must be told it."""

    def __init__(self, path: str | Path | BinaryIO, replace: bool = True):
        super().__init__()
        if isinstance(path, (str, Path)):
            self._partial: PartialFile | None = PartialFile(Path(path), replace)
            self._out: BinaryIO | None = None
            self.name = str(path)
        else:
            self._partial, self._out, self.name = None, path, "stdout"
        self.size: tuple[int, int] | None = None

    def write(self, rgb: np.ndarray, name: str = "", timing: FrameTiming | None = None) -> None:
        """Write one HxWx3 uint8 RGB frame and flush it, so a reader downstream gets it at once."""
        width, height = self._check_size(rgb, self.size)
        try:
            if self._out is None:
                self._out = open(self._partial.path, "wb")  # noqa: SIM115 (closed in close())
            if self.size is None:
                self.size = (width, height)
                log.info("raw RGB24 frames of %dx%d to %s", width, height, self.name)
            self._out.write(np.ascontiguousarray(rgb, np.uint8).data)
            self._out.flush()
        except OSError as exc:
            raise output_error(self.name, exc, self.frames) from exc
        self.frames += 1

    def close(self, outcome: Outcome = "complete") -> str | None:
        """Close a file (renaming it by outcome, as for a video); a stream is left open, flushed."""
        if self._partial is None:
            return STDOUT if self.frames else None
        if self._out is None:
            return None
        out, self._out = self._out, None
        try:
            out.close()
        except OSError as exc:
            if outcome != "failed":
                self._partial.finish("failed")
                raise output_error(self.name, exc, self.frames) from exc
        if outcome == "failed":
            self._partial.finish("failed")
            return None
        return str(self._partial.finish(outcome))


class ImageFolderSink(_Sink):
    """One PNG per frame in a folder, named after the source frame (`a.jpg` -> `a.png`; a name already taken in this
    render gets `-2`, `-3`...: every frame has a file of its own); frames keep their own sizes. The folder is
    written under a temporary name beside it and takes its place when complete, so an older render's files never
    mix with the new ones; an interrupted render is kept as `NAME.partial`."""

    one_size = False

    def __init__(self, folder: str | Path, replace: bool = True):
        super().__init__()
        self.folder = Path(folder).resolve()  # `.` and links name a real folder: the one replaced
        self.replace = replace
        self._work = temporary_name(self.folder)
        self._taken: set[str] = set()
        #: (frame name, file name) of every frame written, in order
        self.files: list[tuple[str, str]] = []

    def _file_name(self, name: str) -> str:
        stem = name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in IMAGE_SUFFIXES else name
        stem = stem.replace("/", "_").replace("\\", "_").replace("\0", "_").lstrip(".") or f"{self.frames:06d}"
        stem = files.fitting_name(self.folder.parent, "", stem, "-000000.png")[: -len("-000000.png")]
        candidate, count = stem, 1
        while candidate.casefold() in self._taken:  # case-folded: two names one file on macOS and Windows
            count += 1
            candidate = f"{stem}-{count}"
        self._taken.add(candidate.casefold())
        return f"{candidate}.png"

    def write(self, rgb: np.ndarray, name: str = "", timing: FrameTiming | None = None) -> None:
        """Write one HxWx3 uint8 RGB frame as `<name without its image suffix>.png` (its index where it has no
        name), made unique within the render."""
        ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
        if not ok:
            raise OppyError(f"cannot encode frame {name or self.frames} as PNG")
        file_name = self._file_name(name)
        try:
            if self.frames == 0:
                self._work.mkdir()
            files.write_bytes(self._work / file_name, data)
        except OSError as exc:
            raise output_error(str(self.folder), exc, self.frames) from exc
        self.files.append((name, file_name))
        self.frames += 1

    def close(self, outcome: Outcome = "complete") -> str | None:
        """Complete: takes the target's place. Interrupted: kept as `NAME.partial` (or the first free `NAME.partial-2`,
        ...). Failed, or no frame: removed."""
        if not self._work.exists():
            return None
        if outcome == "failed" or not self.frames:
            shutil.rmtree(self._work, ignore_errors=True)
            return None
        if outcome == "interrupted":  # never in place of anything: the first free NAME.partial, NAME.partial-2, ...
            return str(files.keep_interrupted(self._work, self.folder))
        if not self.replace:
            return str(files.place_folder(self._work, self.folder))
        final = self.folder
        old = temporary_name(final) if final.exists() or final.is_symlink() else None
        try:
            if old is not None:
                os.replace(final, old)
            os.replace(self._work, final)
        except OSError as exc:
            if old is not None and not final.exists():
                with contextlib.suppress(OSError):
                    os.replace(old, final)  # the older render back in its place
            raise OppyError(f"cannot move the finished frames into place as {str(final)!r}: {exc.strerror or exc}; "
                            f"they are in {str(self._work)!r}") from exc
        if old is not None:
            files.remove_path(old)
        return str(final)


def to_video_frame(rgb: np.ndarray, timing: FrameTiming) -> av.VideoFrame:
    """An HxWx3 uint8 RGB frame as a PyAV `VideoFrame` (rgb24) with the given pts and time base."""
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    frame.pts = timing.pts
    if timing.time_base is not None:
        frame.time_base = timing.time_base
    return frame


def writes_folder(path: str | Path, format: str | None = None) -> bool:
    """Whether `open_sink` makes a folder of images for this output (a name without a suffix, no format)."""
    return format is None and str(path) != STDOUT and not Path(path).suffix


def open_sink(path: str | Path, fps: float | None, crf: int, codec: str, preset: str, format: str | None = None,
              pix_fmt: str = "yuv420p", source_rate: Fraction | None = None, replace: bool = True, threads: int = 0
              ) -> VideoSink | RawVideoSink | ImageFolderSink:
    """The sink for an output: `-` is stdout (an MP4 stream unless `format` says otherwise); a file takes its
    container from `format` or else its suffix; a name without suffix is a folder of PNGs. Without `replace`, a
    finished output never replaces one that appeared at its path meanwhile (`files.move_into_place`)."""
    if format is not None and format not in OUTPUT_FORMATS:
        raise OppyError(f"unknown output format {format!r}: use one of {', '.join(OUTPUT_FORMATS)}")
    target = sys.stdout.buffer if str(path) == STDOUT else Path(path)
    if format == "rawvideo":
        return RawVideoSink(target, replace)
    if writes_folder(path, format):
        return ImageFolderSink(target, replace)
    if format is None and isinstance(target, Path) and target.suffix.lower() not in CONTAINER_FORMATS:
        raise OppyError(f"output {str(target)!r}: give a video ({', '.join(CONTAINER_FORMATS)}), a folder "
                        "name without suffix, or --format rawvideo for raw RGB24 frames")
    return VideoSink(target, fps=fps, crf=crf, codec=codec, preset=preset, pix_fmt=pix_fmt, threads=threads,
                     container=OUTPUT_FORMATS[format] if format else None, source_rate=source_rate, replace=replace)
