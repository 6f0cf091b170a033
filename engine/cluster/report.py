"""A sharded render's report: every chunk's report merged in order (also those an earlier run rendered), and how the
work was spread over the workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..render import RenderReport
from .chunks import Chunk


@dataclass
class ClusterReport(RenderReport):
    """A `RenderReport` merged over every chunk (also those an earlier run rendered), and how the work was spread.

    `workers`: per worker (node and GPU, or node and process), frames, busy seconds and chunks of this run.
    `failed`: chunks that kept failing, by name, with their error; the others are kept in `work_folder` for a rerun.
    """

    shards: int = 0
    chunks_rendered: int = 0
    chunks_reused: int = 0
    chunks: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    workers: dict[str, dict] = field(default_factory=dict)
    cluster: dict = field(default_factory=dict)
    join_seconds: float = 0.0
    work_folder: str | None = None


def _worker_key(result: dict) -> str:
    """A GPU worker is its GPU (each chunk gets a fresh process); a CPU worker is its process."""
    where = f"gpu{','.join(result['gpus'])}" if result["gpus"] else f"pid{result['pid']}"
    return f"{result['node']}/{where}"


def merge_chunks(report: ClusterReport, chunks: list[Chunk], results: dict[str, dict], rendered: set[str]) -> None:
    """Sum the chunks' reports in order (skips too); the workers' share of this run."""
    for chunk in chunks:
        entry = {"name": chunk.name, "first": chunk.first, "stop": chunk.stop, "state": chunk.state,
                 "rendered_now": chunk.name in rendered}
        report.chunks.append(entry)
        result = results.get(chunk.name)
        if result is None:
            continue
        part = result["report"]
        entry.update(frames_out=part["frames_out"], worker=_worker_key(result))
        for key in ("frames_in", "frames_out", "skipped", "frames_resized", "tiles", "frames_info", "cuts"):
            setattr(report, key, getattr(report, key) + part.get(key, type(getattr(report, key))()))
        for size, scale in part.get("chroma_scales", {}).items():
            report.chroma_scales.setdefault(size, scale)
        report.provider, report.provider_fallback = part["provider"], part.get("provider_fallback")
        report.temporal = part.get("temporal", report.temporal)
        report.precision = part.get("precision", report.precision)
        if chunk.name in rendered:
            worker = report.workers.setdefault(_worker_key(result), {
                "node": result["node"], "node_id": result["node_id"], "gpus": result["gpus"], "frames": 0,
                "busy_seconds": 0.0, "chunks": []})
            worker["frames"] += part["frames_out"]
            worker["busy_seconds"] += result["busy_seconds"]
            worker["chunks"].append(chunk.name)
            for stage, seconds in part["stage_busy_seconds"].items():
                report.stage_busy_seconds[stage] = report.stage_busy_seconds.get(stage, 0.0) + seconds
