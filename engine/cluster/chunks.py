"""The chunks of a sharded render and their segments on disk: the plan, the work folder that makes a rerun resume,
and the join of the segments into one video without re-encoding.

No Ray here: `driver` runs the chunks; what it leaves on disk is this module's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import av

from ..errors import FrameError, NothingToRender, OppyError
from ..frames import display_name
from ..inputs.pds import detached_labels
from ..inputs.sources import read_entry
from ..kernels.resize import frame_size
from ..outputs.files import (
    PartialFile,
    fitting_name,
    interrupted_copies,
    leftover_temporaries,
    output_error,
    remove_path,
    write_file,
)

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
#: the segment's suffix for each output format (raw RGB24 frames have no container)
SEGMENT_SUFFIX = {"mp4": ".mp4", "mov": ".mov", "mkv": ".mkv", "rawvideo": ".rgb"}


def input_record(path: Path) -> list:
    """[name, size, mtime_ns] of one input: the cheap checksum that decides whether a done chunk is still valid.

    Size and modification time change whenever a file is rewritten and cost one stat, where hashing even the first
    bytes opens every file of the archive (on a network filesystem, the slow part). A rewrite that keeps both,
    such as `cp -p` of other bytes, is not noticed: remove the work folder to start over.
    """
    try:
        info = os.stat(path)
    except OSError as exc:  # the chunk's render reports it as a skip; here only its state counts
        return [display_name(path.name), -1, exc.errno or 0]
    record = [display_name(path.name), info.st_size, info.st_mtime_ns]
    for label in detached_labels(path) if path.suffix.lower() == ".img" else ():
        with contextlib.suppress(OSError):  # a PDS product's detached label is part of the input too
            label_info = os.stat(label)
            record += [label_info.st_size, label_info.st_mtime_ns]
    return record


@dataclass
class Chunk:
    """Inputs `first` to `stop - 1` of the sorted listing; `inputs` is a digest of their records."""

    name: str
    first: int
    stop: int
    inputs: str
    state: str = "pending"  # pending, done or failed
    error: str | None = None


def plan_chunks(records: list[list], chunk_frames: int, lead_in: int = 0) -> list[Chunk]:
    """Contiguous chunks of `chunk_frames` inputs (the last may be shorter), in order; each one's digest covers the
    `lead_in` inputs before it too (they colour its first frames)."""
    chunks = []
    for index, first in enumerate(range(0, len(records), chunk_frames)):
        stop = min(first + chunk_frames, len(records))
        digest = hashlib.sha256(json.dumps(records[max(0, first - lead_in):stop]).encode()).hexdigest()[:16]
        chunks.append(Chunk(f"chunk-{index:05d}", first, stop, digest))
    return chunks


def video_canvas(files: list[Path]) -> tuple[int, int]:
    """(width, height) of the first readable frame: the video's size, as a single-process render takes it."""
    first_skip = None
    for path in files:
        try:
            pixels, _ = read_entry(path)
        except FrameError as exc:
            first_skip = first_skip or f"{display_name(path.name)}: {exc}"
            continue
        return frame_size(pixels)
    raise NothingToRender(f"nothing to render: none of the {len(files)} inputs is a readable frame "
                          f"(first: {first_skip})")


class WorkFolder:
    """`.OUTPUT.shards/` beside the output: `manifest.json` (settings, chunk size, chunks and their states),
    `inputs.json` (every input's record), and per chunk its segment and, once done, `chunk-NNNNN.json` (its
    render report and where it ran). Only the driver writes the JSON files, atomically."""

    def __init__(self, output: Path, segment_suffix: str):
        self.path = output.with_name(fitting_name(output.parent, ".", output.name, ".shards"))
        self.suffix = segment_suffix
        self.plan: dict = {}  # settings, chunk_frames and shards: saved with the chunks

    def segment(self, chunk: Chunk) -> Path:
        return self.path / f"{chunk.name}{self.suffix}"

    def result(self, chunk: Chunk) -> Path:
        return self.path / f"{chunk.name}.json"

    def _read(self, name: str):
        try:
            return json.loads((self.path / name).read_text())
        except (OSError, ValueError):
            return None

    def load(self) -> dict | None:
        """The manifest of an earlier run, if there is a readable one of this version."""
        manifest = self._read("manifest.json")
        return manifest if isinstance(manifest, dict) and manifest.get("version") == MANIFEST_VERSION else None

    def write(self, name: str, data) -> None:
        """Write JSON atomically: a crash leaves the old file or the new one, never half of one."""
        write_file(self.path / name, json.dumps(data, indent=1) + "\n", name)

    def save(self, chunks: list[Chunk]) -> None:
        self.write("manifest.json", {"version": MANIFEST_VERSION, **self.plan, "chunks": [asdict(c) for c in chunks]})

    def resume(self, chunks: list[Chunk], old: dict | None, records: list[list]) -> dict[str, dict]:
        """Mark done the chunks an earlier run finished with the same inputs, and return their results; clear what
        earlier attempts left of every other chunk. Writes this run's `inputs.json`."""
        before = {c["name"]: c for c in old["chunks"]} if old else {}
        old_records = {r[0]: r for r in self._read("inputs.json") or []} if before else {}
        results = {}
        for chunk in chunks:
            was = before.get(chunk.name, {})
            same = [was.get(k) for k in ("first", "stop", "inputs", "state")] == [chunk.first, chunk.stop,
                                                                                  chunk.inputs, "done"]
            result = self._read(self.result(chunk).name) if same else None
            if result is not None and (self.segment(chunk).is_file() or not result["report"]["frames_out"]):
                chunk.state = "done"
                results[chunk.name] = result
                continue
            if was.get("state") == "done":
                changed = [r[0] for r in records[chunk.first : chunk.stop] if old_records.get(r[0]) != r]
                log.info("%s is rendered again: %s", chunk.name, f"{len(changed)} of its inputs changed (first: "
                         f"{changed[0]})" if changed else "its frame range moved or its segment is missing")
            segment = self.segment(chunk)
            for path in (segment, self.result(chunk), *leftover_temporaries(segment),
                         *interrupted_copies(segment)):
                remove_path(path)
        self.write("inputs.json", records)
        return results


def join_video(segments: list[Path], dst: Path, container: str, replace: bool = True) -> None:
    """Remux video segments, each starting on a keyframe, into one video with continuous timestamps (frame i at
    i/fps). Refuses segments whose codec parameters differ, since the joined stream has one set."""
    heads = []
    for segment in segments:
        with av.open(str(segment)) as src:
            stream = src.streams.video[0]
            ctx = stream.codec_context
            first = next(p for p in src.demux(stream) if p.dts is not None)
            heads.append(((ctx.name, ctx.width, ctx.height, ctx.format.name, bytes(ctx.extradata or b""),
                           stream.time_base), first.pts - first.dts))
    if len({params for params, _ in heads}) > 1:
        raise OppyError(f"the segments of {str(dst)!r} were encoded with different codec parameters and cannot be "
                        "joined without re-encoding: render them again with the same options on every worker")
    # x264 starts decode times a B-frame delay early, and a segment too short for B-frames has none: each segment
    # is shifted to the largest delay, so decode times keep rising across the joins and presentation times are kept
    delay = max(d for _, d in heads)
    partial = PartialFile(dst, replace)
    frames, offset = 0, 0
    try:
        with av.open(str(partial.path), "w", format=container) as out:
            with av.open(str(segments[0])) as src:
                template = src.streams.video[0]
                add = getattr(out, "add_stream_from_template", None)  # PyAV 13+; before, add_stream(template=)
                stream = add(template) if add else out.add_stream(template=template)
            for segment, (_, segment_delay) in zip(segments, heads, strict=True):
                end = offset
                with av.open(str(segment)) as src:
                    for packet in src.demux(src.streams.video[0]):
                        if packet.dts is None:  # the demuxer's empty flush packet
                            continue
                        packet.pts += offset
                        packet.dts += offset - (delay - segment_delay)
                        end = max(end, packet.pts + (packet.duration or 0))
                        packet.stream = stream
                        out.mux(packet)
                        frames += 1
                offset = end
    except (OSError, av.FFmpegError) as exc:
        with contextlib.suppress(OSError):
            partial.finish("failed")
        raise output_error(str(dst), exc, frames) from exc
    partial.finish("complete")


def join_raw(segments: list[Path], dst: Path, replace: bool = True) -> None:
    """Raw RGB24 segments have no header: joining them is concatenation."""
    partial = PartialFile(dst, replace)
    try:
        with open(partial.path, "wb") as out:
            for segment in segments:
                with open(segment, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.finish("failed")
        raise output_error(str(dst), exc, 0) from exc
    partial.finish("complete")
