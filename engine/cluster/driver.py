"""One archive across a Ray cluster: contiguous chunks of the naturally sorted frame list, each rendered by the
ordinary engine into a segment on a Ray worker, then joined in order without re-encoding (see `chunks`).

The only module that imports Ray (the `cluster` extra); the CLI imports it only for --shards / --cluster.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import ray

from ..api import Engine
from ..config import OUTPUT_FORMATS, EngineConfig
from ..errors import NothingToRender, OppyError
from ..frames import Skipped, display_name
from ..inputs.archive import list_archive, measure_levels
from ..inputs.stretch import Levels
from ..outputs.files import STDOUT
from ..outputs.sinks import CONTAINER_FORMATS
from ..render import (
    ChunkRange,
    ProgressCallback,
    check_listing,
    check_outputs,
    check_something_rendered,
    reads_folder,
    render,
)
from ..temporal import LEAD_IN
from .chunks import SEGMENT_SUFFIX, Chunk, WorkFolder, input_record, join_raw, join_video, plan_chunks, video_canvas
from .report import ClusterReport, merge_chunks

log = logging.getLogger(__name__)

#: chunk size when --shards is not given: small enough that a crash loses little, large enough that a worker's start
#: is a small part of a chunk. A CPU worker process serves many chunks with one engine; a GPU chunk gets a fresh
#: process (imports, CUDA, model load: seconds) and renders tens of frames a second, so its chunks are larger.
DEFAULT_CHUNK_FRAMES = {"cpu": 1000, "gpu": 5000}
#: how often a worker tells the progress actor how far its chunk is
_PROGRESS_SECONDS = 0.5


# -- on a worker ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkJob:
    """What a worker needs to render one chunk: its files (names in `folder`), the segment, the video's size."""

    name: str
    folder: str
    files: list[str]
    segment: str
    config: EngineConfig
    canvas: tuple[int, int]
    #: the archive's stretch, measured once for every chunk (`--stretch archive`)
    levels: Levels | None = None
    #: the index of the chunk's first entry in the whole listing
    first_index: int = 0
    #: the entries just before the chunk, coloured first and not written, so that the temporal smoothing's window
    #: holds what a single-process render's would
    lead_in: tuple[str, ...] = ()


_engines: dict[EngineConfig, Engine] = {}


def _engine(config: EngineConfig) -> Engine:
    """One engine per worker process, kept for its next chunk (a CPU worker process serves many tasks)."""
    if config not in _engines:
        for engine in _engines.values():
            engine.close()
        _engines.clear()
        _engines[config] = Engine(config=config)
    return _engines[config]


def render_chunk(job: ChunkJob, progress=None) -> dict:
    """Render one chunk into its segment with the ordinary engine (a Ray task); `progress` is the progress actor.
    Returns the render report (skips included, also for a chunk without one readable frame) and where it ran."""
    began = time.perf_counter()
    engine = _engine(job.config)
    skipped: list[dict[str, str]] = []
    told = [0.0]

    def tell(done: int, total: int | None, skip) -> None:
        if isinstance(skip, Skipped):
            skipped.append({"name": skip.name, "reason": skip.reason})
        now = time.perf_counter()
        if progress is not None and (now - told[0] >= _PROGRESS_SECONDS or done == total):
            told[0] = now
            progress.update.remote(job.name, done)

    try:
        chunk = ChunkRange((*job.lead_in, *job.files), job.canvas, job.levels, job.first_index - len(job.lead_in),
                           len(job.lead_in))
        report = render(engine, job.folder, job.segment, progress=tell, chunk=chunk).to_dict()
    except NothingToRender:  # a chunk of skips only: no segment, but its skips belong in the report
        report = {"frames_in": len(job.files), "frames_out": 0, "skipped": skipped, "frames_resized": 0, "tiles": 0,
                  "provider": engine.provider, "stage_busy_seconds": {}}
    report.pop("config", None)
    context = ray.get_runtime_context()
    return {"chunk": job.name, "report": report, "busy_seconds": time.perf_counter() - began,
            "node": socket.gethostname(), "node_id": context.get_node_id(), "pid": os.getpid(),
            "gpus": [str(g) for g in context.get_accelerator_ids().get("GPU", [])]}


def _progress_actor():
    """A Ray actor holding the frames done per chunk, told by the workers; the driver reads the sum for its one
    progress bar. (Defined in here, the class travels by value: its process need not import the engine.)"""

    class Progress:
        def __init__(self) -> None:
            self.frames: dict[str, int] = {}

        def update(self, chunk: str, done: int) -> None:
            self.frames[chunk] = done  # a retried chunk starts again from 0

        def total(self) -> int:
            return sum(self.frames.values())

    return ray.remote(num_cpus=0)(Progress).remote()


# -- on the driver -------------------------------------------------------------------------------------------------
#: the options that do not change a segment's frames (which model file is `settings`' own entry; how fast; whether
#: to overwrite): a rerun with other values of these resumes
_RUNTIME_OPTIONS = frozenset({"model", "batch_size", "threads", "decode_threads", "encoder_threads", "queue_size",
                              "overwrite", "input_size"})


def _settings(src: Path, model: Path, config: EngineConfig, canvas: tuple[int, int]) -> dict:
    """What the segments depend on: a rerun with other settings starts over."""
    info = model.stat()
    return {"input": str(src.resolve()), "model": [str(model.resolve()), info.st_size, info.st_mtime_ns],
            "canvas": list(canvas), **{option.name: str(getattr(config, option.name)) for option in fields(config)
                                       if option.name not in _RUNTIME_OPTIONS}}


def _worker_options(chunks: int, config: EngineConfig, retries: int) -> tuple[dict, EngineConfig, dict]:
    """Ray task options: one GPU per task where the cluster has GPUs, else an equal share of a node's CPUs."""
    total = ray.cluster_resources()
    gpus, cpus = int(total.get("GPU", 0)), max(1, int(total.get("CPU", 1)))
    retry = {"max_retries": retries, "retry_exceptions": True}
    if gpus and config.provider != "cpu":
        # given to ray.remote (not .options), num_gpus makes Ray start a fresh process per GPU task, so a chunk's
        # engine always sits on the GPU Ray assigned it
        return {"num_gpus": 1, "num_cpus": 1, **retry}, config, {"gpus": gpus, "cpus": cpus, "per_worker": "1 GPU"}
    largest = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=cpus)
    share = max(1, min(largest, cpus // min(chunks, cpus)))
    threads = config.threads or share
    env = {"env_vars": {"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}}
    # decoding threads too keep to the worker's share, not to the node's cores
    worker_config = replace(config, threads=threads, decode_threads=config.decode_threads or share)
    return ({"num_cpus": share, "runtime_env": env, **retry}, worker_config,
            {"gpus": 0, "cpus": cpus, "per_worker": f"{share} CPU"})


#: seconds a cluster's address may take to answer before the render gives up on it (Ray itself retries for minutes)
CONNECT_SECONDS = 10.0


def check_reachable(address: str | None, timeout: float = CONNECT_SECONDS) -> None:
    """Refuse, in one line, a `HOST:PORT` or `ray://HOST:PORT` address where nothing answers within `timeout`
    seconds; other addresses (None, `auto`, `local`) are Ray's to resolve."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdecimal() or not 0 < int(port) < 65536:
        raise OppyError(f"--cluster {address!r} is not an address: give HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:  # ValueError: a host name the system cannot encode (a label over 63)
        why = "nothing answered in time" if isinstance(exc, TimeoutError) else (getattr(exc, "strerror", None)
                                                                               or str(exc))
        raise OppyError(f"cannot reach the Ray cluster {address}: {why.lower()}: start one with `ray start --head` "
                        "or pass its address to --cluster") from exc


def _connect(address: str | None) -> bool:
    """Use the Ray this process has, or connect (or start one); True when it must be shut down afterwards."""
    if ray.is_initialized():
        return False
    check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, include_dashboard=False, logging_level=logging.WARNING)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise OppyError(f"cannot reach the Ray cluster {address or '(default)'}: {exc}: start one with `ray start "
                        "--head` or pass its address to --cluster") from exc
    return True


def render_sharded(src: str | Path, dst: str | Path, config: EngineConfig, shards: int | None = None,
                   address: str | None = None, keep: bool = False, retries: int = 2,
                   progress: ProgressCallback | None = None, stop: threading.Event | None = None,
                   chunk_task=render_chunk) -> ClusterReport:
    """Render the folder `src` into the video (or raw frames) `dst` as `shards` chunks on Ray workers, joined in
    order. A rerun resumes from the work folder beside `dst`, which is removed after the join unless `keep`.

    `address`: a Ray cluster (`auto`, `HOST:PORT`, `ray://...`); None is Ray's own choice (RAY_ADDRESS, the
    cluster last started on this machine, or a new local one). A Ray already initialised in this process is used
    as it is. `shards` None: one chunk per GPU (or CPU), more where they would exceed DEFAULT_CHUNK_FRAMES; a
    rerun keeps the chunks of the run it resumes. Each chunk is retried `retries` times (an exception or a lost
    worker); one that still fails is named in `report.failed`. `stop` cancels the chunks in flight and keeps the
    finished ones (`report.interrupted`). `chunk_task` renders one `ChunkJob` (tests wrap it to inject failures).
    """
    began = time.perf_counter()
    # absolute paths: a worker's working directory is not the driver's
    folder, output = Path(src).absolute(), Path(dst).absolute()
    kind = _check_request(src, dst, folder, output, config, shards, retries)
    check_outputs(folder, output, config)
    archive = _list(folder, src, config)
    config, model = _probe_model(archive.config)
    work = WorkFolder(output, SEGMENT_SUFFIX[kind] if config.format else output.suffix)
    settings = {**_settings(folder, model, config, archive.canvas),
                "levels": [archive.levels.low, archive.levels.high] if archive.levels else None}
    old = work.load()
    if old is not None and old.get("settings") != settings:
        log.info("the work folder %s holds a render with other settings: starting over", work.path)
        old = None
    records = [input_record(path) for path in archive.files]
    started = _connect(address)
    try:
        chunk_frames = old["chunk_frames"] if old is not None and shards in (None, old["shards"]) else \
            _chunk_frames(len(archive.files), shards, config)  # a resumed run keeps its chunks, also with new inputs
        lead_in = LEAD_IN if config.temporal > 0 else 0
        chunks = plan_chunks(records, chunk_frames, lead_in)
        options, worker_config, cluster = _worker_options(len(chunks), config, retries)
        work.path.mkdir(exist_ok=True)
        results = work.resume(chunks, old, records)
        work.plan = {"settings": settings, "chunk_frames": chunk_frames, "shards": shards}
        work.save(chunks)
        jobs = {c.name: ChunkJob(c.name, str(folder), [p.name for p in archive.files[c.first : c.stop]],
                                 str(work.segment(c)), replace(worker_config, overwrite=True), archive.canvas,
                                 archive.levels, c.first,
                                 tuple(p.name for p in archive.files[max(0, c.first - lead_in) : c.first]))
                for c in chunks if c.state != "done"}
        rendered = _run(ray.remote(**options)(chunk_task), jobs, chunks, results, work, progress, stop)
    finally:
        if started:
            ray.shutdown()

    report = ClusterReport(str(src), str(dst), str(model), config.provider, None, shards=len(chunks),
                           config={k: str(v) for k, v in asdict(config).items()}, work_folder=str(work.path),
                           cluster={"address": address, **cluster}, chunks_rendered=len(rendered),
                           chunks_reused=sum(c.state == "done" for c in chunks) - len(rendered))
    merge_chunks(report, chunks, results, rendered)
    report.order, report.deselected = config.order, archive.deselected
    report.stretch = asdict(archive.levels) if archive.levels else None
    report.failed = [{"chunk": c.name, "frames": f"{c.first}..{c.stop - 1}", "first_file": records[c.first][0],
                      "error": c.error} for c in chunks if c.state == "failed"]
    report.interrupted = any(c.state == "pending" for c in chunks)
    if not report.failed and not report.interrupted:
        _join(report, [work.segment(c) for c in chunks if results[c.name]["report"]["frames_out"]], output, kind,
              src, config.overwrite)
        if not keep:
            shutil.rmtree(work.path, ignore_errors=True)
            report.work_folder = None
    report.wall_seconds = time.perf_counter() - began
    now = sum(results[name]["report"]["frames_out"] for name in rendered)
    report.frames_per_second = now / report.wall_seconds if report.wall_seconds else 0.0
    return report


def _check_request(src: str | Path, dst: str | Path, folder: Path, output: Path, config: EngineConfig,
                   shards: int | None, retries: int) -> str:
    """A `OppyError` for what --shards cannot do; else the output's format."""
    if not reads_folder(src, config.input_size):
        raise OppyError(f"--shards renders a folder of images, and {str(src)!r} is not one: render a video or raw "
                        "frames without --shards")
    kind = config.format or CONTAINER_FORMATS.get(output.suffix.lower())
    if str(dst) == STDOUT or kind not in SEGMENT_SUFFIX:
        raise OppyError(f"--shards writes a video file ({', '.join(CONTAINER_FORMATS)}) or raw frames to a file "
                        f"(--format rawvideo), not {str(dst)!r}")
    if shards is not None and shards < 1:
        raise OppyError(f"--shards must be at least 1, not {shards}")
    if retries < 0:
        raise OppyError(f"--retries must be 0 or more, not {retries}")
    return kind


@dataclass(frozen=True)
class _Archive:
    """The archive as one process would render it: its files in order, the entries left out, the stretch measured
    on it, the video's size, and the config the chunks get (no stretch of their own where none was measured)."""

    files: list[Path]
    deselected: list[dict]
    levels: Levels | None
    canvas: tuple[int, int]
    config: EngineConfig


def _list(folder: Path, src: str | Path, config: EngineConfig) -> _Archive:
    listing = list_archive(folder, config.order, config.camera)  # the same order and selection as one process
    check_listing(listing, src, config.camera)
    levels = measure_levels(listing.files) if config.stretch == "archive" else None
    if levels is None:
        config = replace(config, stretch="none")  # nothing to stretch: no chunk measures one of its own
    return _Archive(listing.files, listing.deselected, levels, video_canvas(listing.files), config)


def _probe_model(config: EngineConfig) -> tuple[EngineConfig, Path]:
    """The config with the model's absolute path (workers run elsewhere), and the model file: a bad model stops
    here, before any worker starts."""
    if config.model is not None:
        config = replace(config, model=str(Path(config.model).absolute()))
    with Engine(config=replace(config, provider="cpu", batch_size=1, threads=1)) as probe:
        return config, probe.session.path


def _chunk_frames(files: int, shards: int | None, config: EngineConfig) -> int:
    """Frames per chunk: `shards` chunks, else one per GPU (or CPU) of the cluster, more where a chunk would
    exceed DEFAULT_CHUNK_FRAMES."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if config.provider != "cpu" else 0
    slots = gpus or int(resources.get("CPU", 1))
    default = DEFAULT_CHUNK_FRAMES["gpu" if gpus else "cpu"]
    return math.ceil(files / (shards or max(slots, math.ceil(files / default))))


def _join(report: ClusterReport, segments: list[Path], output: Path, kind: str, src: str | Path,
          replace: bool = True) -> None:
    """The segments joined in order into `output` (no re-encode); `NothingToRender` when no chunk had a frame."""
    check_something_rendered(report, src)
    joined = time.perf_counter()
    if kind == "rawvideo":
        join_raw(segments, output, replace)
    else:
        join_video(segments, output, OUTPUT_FORMATS[kind], replace)
    report.join_seconds = time.perf_counter() - joined
    report.written = report.output


def _run(task, jobs: dict[str, ChunkJob], chunks: list[Chunk], results: dict[str, dict], work: WorkFolder,
         progress: ProgressCallback | None, stop: threading.Event | None) -> set[str]:
    """Submit the jobs, collect the chunks as they finish (saving the manifest after each) and feed the progress bar
    from the workers; returns the chunks rendered now."""
    total = chunks[-1].stop
    reused = sum(c.stop - c.first for c in chunks if c.state == "done")
    tracker, asked = (_progress_actor() if progress is not None else None), None
    pending = {}
    for chunk in chunks:
        if chunk.name in jobs:
            chunk.state, chunk.error = "pending", None
            pending[task.remote(jobs[chunk.name], tracker)] = chunk
    rendered: set[str] = set()
    try:
        while pending and not (stop is not None and stop.is_set()):
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.25)
            for ref in ready:
                chunk = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # after its retries: the task's exception, or a lost worker
                    cause = getattr(exc, "cause", None) or exc
                    chunk.state, chunk.error = "failed", f"{type(cause).__name__}: {str(cause).strip()}"
                    log.error("%s (from %s) failed after its retries: %s", chunk.name,
                              display_name(jobs[chunk.name].files[0]), chunk.error)
                else:
                    for skip in result["report"]["skipped"]:
                        log.warning("skipped %s: %s", skip["name"], skip["reason"])
                    work.write(work.result(chunk).name, result)
                    chunk.state = "done"
                    results[chunk.name] = result
                    rendered.add(chunk.name)
                work.save(chunks)
            if progress is not None:  # never wait for the actor: the chunks matter more than the bar
                asked = asked or tracker.total.remote()
                if ray.wait([asked], timeout=0)[0]:
                    progress(reused + ray.get(asked), total, None)
                    asked = None
    finally:
        for ref in pending:  # stopped, or aborted by a second signal: the finished chunks stay for a rerun
            ray.cancel(ref, force=True)
        if tracker is not None:
            ray.kill(tracker)
        work.save(chunks)
    if progress is not None:
        progress(reused + sum(c.stop - c.first for c in chunks if c.name in rendered), total, None)
    return rendered
