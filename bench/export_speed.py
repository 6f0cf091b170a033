"""Exported graphs on the CPU provider: tf2onnx's inputs_as_nchw against ONNX Runtime's own layout pass, the
graph without `oppy-export`'s upsampling fold, the offline ORT-optimized graph of `oppy-export --optimize`, and the
float16 copy's speed and error.

Every variant is timed in the same process in alternating rounds (`oppy.export.speed`); needs the `train` extra.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx

from oppy.export.convert import to_fp16, to_onnx
from oppy.export.graph import fold_nearest_upsampling
from oppy.export.metadata import run_contract, stamp
from oppy.export.network import keras_predict, load_network
from oppy.export.parity import FP16_TOLERANCE, check_parity, parity_tiles
from oppy.export.speed import alternating_times, cpu_session, runner

# name: (graph, optimization level the session applies when it loads it)
VARIANTS = {
    "NHWC export, ORT all (shipped)": ("nhwc", "all"),
    "NHWC export, ORT extended (no layout pass)": ("nhwc", "extended"),
    "tf2onnx's upsampling repeats (no fold), ORT all": ("unfolded", "all"),
    "inputs_as_nchw, ORT all": ("nchw", "all"),
    "inputs_as_nchw, ORT extended": ("nchw", "extended"),
    "--optimize (offline extended), ORT all": ("offline-extended", "all"),
    "offline all (NCHWc, this CPU only), ORT all": ("offline-all", "all"),
    "float16 copy, ORT all": ("fp16", "all"),
}

# name: (graph, level) of the graphs ONNX Runtime optimizes offline and saves
OFFLINE = {"offline-extended": ("nhwc", "extended"), "offline-all": ("nhwc", "all"),
           "nchw-offline-all": ("nchw", "all")}


def _float16_arithmetic_error(network, tile_sets: dict[str, np.ndarray]) -> float:
    """Max |Δab| of the network computed by TensorFlow in float16 (weights, activations and arithmetic),
    an estimate of what float16 on a GPU costs, which ONNX Runtime's CPU provider does not compute."""
    import keras

    from oppy.training.architectures import build

    keras.config.set_dtype_policy("float16")
    try:
        half = build(network.name, network.input_shape[1])
    finally:
        keras.config.set_dtype_policy("float32")
    half.set_weights(network.get_weights())
    return max(float(np.abs(np.asarray(half(tiles.astype(np.float16), training=False), np.float32)
                            - keras_predict(network, tiles)).max()) for tiles in tile_sets.values())


def bench_export(source: str | Path | None = None, arch: str = "unet", batch_size: int = 256, rounds: int = 7,
                 images: Path | None = None) -> dict:
    """Median seconds per batch of each variant, session load times, and the float16 copy's error; `source`
    is a run directory or .keras file (default: an untrained `arch`, which costs what a trained one costs)."""
    load_before = os.getloadavg()
    if source is None:
        from oppy.training.architectures import build

        network, run_dir = build(arch), None
    else:
        network, run_dir = load_network(source)
    contract = run_contract(run_dir, network.name, network.input_shape[1])
    unfolded = stamp(to_onnx(network, contract), contract)
    graphs = {"unfolded": unfolded, "nhwc": onnx.ModelProto.FromString(unfolded.SerializeToString()),
              "nchw": stamp(to_onnx(network, contract, inputs_as_nchw=True), contract)}
    folded = {name: fold_nearest_upsampling(graphs[name]) for name in ("nhwc", "nchw")}  # as oppy-export does
    graphs["fp16"] = to_fp16(graphs["nhwc"])
    tile_sets = parity_tiles(contract, images)
    batch = parity_tiles(contract, count=batch_size, seed=1)["random"]
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: Path(tmp) / f"{name}.onnx" for name in (*graphs, *OFFLINE)}
        for name, graph in graphs.items():
            onnx.save(graph, paths[name])
        for name, (graph, level) in OFFLINE.items():
            cpu_session(paths[graph], level, save_to=paths[name])
        seconds = alternating_times({name: runner(cpu_session(paths[graph], level), batch)
                                     for name, (graph, level) in VARIANTS.items()}, rounds)
        loads = alternating_times({graph: lambda graph=graph: cpu_session(paths[graph]) for graph in
                                   ("nhwc", "offline-extended", "offline-all")}, rounds, warmup=1)
        fp16 = check_parity(network, paths["fp16"], tile_sets, FP16_TOLERANCE, "cpu")
        nodes = {name: [node.op_type for node in onnx.load(path).graph.node] for name, path in paths.items()}
    shipped = float(np.median(seconds[next(iter(VARIANTS))]))
    rows = []
    for name, times in seconds.items():
        low, median, high = (float(q) for q in np.percentile(times, [25, 50, 75]))
        rows.append({"variant": name, "ms_per_batch": 1000 * median, "ms_q1": 1000 * low, "ms_q3": 1000 * high,
                     "tiles_per_s": batch_size / median, "vs_shipped": shipped / median})
    return {
        "model": str(source) if source else f"untrained {arch}", "batch_size": batch_size, "rounds": rounds,
        # 1, 5 and 15 minute load averages before and after: other work on the machine slows every variant
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "variants": rows,
        "graph_nodes": {name: {"all": len(ops), "Transpose": ops.count("Transpose"), "Reshape": ops.count("Reshape")}
                        for name, ops in nodes.items()},
        # the same operators once ONNX Runtime has optimized both at the engine's level (counted: the order in which
        # it serializes independent nodes, such as two layout reorders, varies from run to run)
        "inputs_as_nchw_same_graph_as_nhwc_after_ort":
            sorted(nodes["nchw-offline-all"]) == sorted(nodes["offline-all"]),
        "upsamplings_folded": folded,
        "session_load_ms": {graph: 1000 * float(np.median(s)) for graph, s in loads.items()},
        "fp16": {"ort_cpu_max_abs_ab": fp16.max_abs, "tolerance": FP16_TOLERANCE,
                 "tf_float16_arithmetic_max_abs_ab": _float16_arithmetic_error(network, tile_sets)},
    }
