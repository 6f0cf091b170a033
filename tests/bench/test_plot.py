import pytest

from oppy.engine import OppyError

pytest.importorskip("matplotlib")

from oppy.bench.plot import plot_tiles


def _result(rows):
    return {"model": "m.onnx", "flops": {"flops_per_tile": 1.3e8}, "gpu": {"name": "NVIDIA H100 80GB HBM3"},
            "rows": rows}


def _row(variant, batch, rate, status="ok"):
    return {"variant": variant, "batch_size": batch, "tiles_per_s": rate, "status": status}


def test_a_line_per_variant_is_drawn_to_a_png(tmp_path):
    rows = [_row("cuda fp32", b, 1000.0 * b) for b in (1, 16, 256)] + [_row("cpu fp32", b, 50.0) for b in (1, 16)]
    path = plot_tiles(_result([*rows, _row("tensorrt fp16", 1, 0, "skipped")]), tmp_path / "tiles.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_nothing_to_plot_when_every_combination_was_skipped(tmp_path):
    with pytest.raises(OppyError, match="nothing to plot"):
        plot_tiles(_result([_row("cuda fp32", 1, 0, "skipped")]), tmp_path / "tiles.png")
    assert not (tmp_path / "tiles.png").exists()
