"""The pictures of the benchmarks: tiles/s against batch size (`oppy-bench tiles`), and the frames' mean a*, b* over
a sequence with and without temporal smoothing (`oppy-bench temporal`).

Needs matplotlib (extra `plot`); drawn off-screen, so it works on a server.
"""

from __future__ import annotations

from pathlib import Path

from oppy.engine.errors import OppyError


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise OppyError("--plot needs matplotlib: pip install 'oppy-stream[plot]'") from exc
    return plt


def plot_tiles(result: dict, path: str | Path) -> Path:
    """Draw `result` (what `tiles_speed.bench_tiles` returns) as tiles/s vs batch size, log-log, to a PNG."""
    plt = _pyplot()
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


def plot_temporal(result: dict, path: str | Path) -> Path:
    """Draw the frames' mean a* and b* over the pans of `result` (what `temporal.bench_temporal` returns), every
    frame alone and smoothed, with the truth's, to a PNG; the pans' first frames marked (the cuts)."""
    plt = _pyplot()
    series = result["pans"]["series"]
    figure, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for channel, axis in enumerate(axes):
        for name, style in (("truth", ":"), ("alone", "-"), ("smoothed", "-")):
            axis.plot([means[channel] for means in series[name]], style, label=name,
                      linewidth=1.6 if name == "smoothed" else 1.0)
        for start in result["pans"]["starts"][1:]:
            axis.axvline(start, color="grey", alpha=0.3)
        axis.set_ylabel(f"mean {'ab'[channel]}*")
        axis.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7, ncol=3)
    axes[1].set_xlabel("frame (pans over validation photos, back to back; grey lines: cuts)")
    axes[0].set_title(f"temporal smoothing {result['strength']:g} against every frame alone", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)
