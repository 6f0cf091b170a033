"""Tiles/s against batch size, one line per provider, precision and binding: the picture of `oppy-bench tiles`.

Needs matplotlib (extra `plot`); drawn off-screen, so it works on a server.
"""

from __future__ import annotations

from pathlib import Path

from oppy.engine.errors import OppyError


def plot_tiles(result: dict, path: str | Path) -> Path:
    """Draw `result` (what `tiles_speed.bench_tiles` returns) as tiles/s vs batch size, log-log, to a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise OppyError("--plot needs matplotlib: pip install 'oppy-stream[plot]'") from exc
    lines: dict[str, list[tuple[int, float]]] = {}
    for row in result["rows"]:
        if row["status"] == "ok":
            lines.setdefault(row["variant"], []).append((row["batch_size"], row["tiles_per_s"]))
    if not lines:
        raise OppyError("nothing to plot: every combination was skipped")
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, points in lines.items():
        batches, rates = zip(*sorted(points), strict=True)
        axes.plot(batches, rates, marker="o", label=name)
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("batch size (tiles)")
    axes.set_ylabel("tiles/s")
    device = result["gpu"]["name"] if result.get("gpu") else result.get("cpu", "CPU")
    axes.set_title(f"{Path(result['model']).name} ({result['flops']['flops_per_tile'] / 1e9:.3g} GFLOP/tile) "
                   f"on {device}", fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return Path(path)
