"""Keras network to ONNX model: tf2onnx through a tf.function, the contract's tensor names, checked parity.

`export_model` is the whole job of `oppy-export`: load a run's network, convert it, stamp the model contract
into `metadata_props`, and write each file (float32; optionally a float16 copy and an ORT-optimized graph)
only after it matched TensorFlow on the parity tiles.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from oppy.engine.contract import DEFAULT_OVERLAP, ModelContract
from oppy.engine.errors import ModelError, OppyError
from oppy.engine.outputs.files import temporary_name
from oppy.engine.session import choose_providers

from .graph import FOLD_RECORD, fold_nearest_upsampling
from .metadata import exporter_versions, run_contract, stamp, with_exporter
from .network import keras_ab, load_network, network_tile
from .parity import FP16_TOLERANCE, FP32_TOLERANCE, Parity, check_parity, parity_tiles
from .speed import alternating_times, cpu_session, runner

log = logging.getLogger(__name__)

MIN_OPSET = 17
#: an ORT-optimized graph is written only when its median batch time is at least this much lower: repeated runs
#: of the same graphs on a loaded 2-core machine differed by up to 5% (`oppy-bench export`)
OPTIMIZE_MARGIN = 0.05


@dataclass(frozen=True)
class ExportOptions:
    """Options of `export_model`; `oppy-export` maps its flags onto these one to one."""

    opset: int = MIN_OPSET
    #: the recommended overlap written into the contract (the engine's default for this model)
    overlap: int = DEFAULT_OVERLAP
    #: also write STEM.fp16.onnx: float16 weights and arithmetic, float32 input and output
    fp16: bool = False
    #: also write STEM.optimized.onnx, ONNX Runtime's graph optimized offline, if it runs faster
    optimize: bool = False
    #: the median long side, px, of the photos the network learned from; None: what the run recorded
    scene_size: int | None = None
    #: the palette guard's palette (`oppy.palette`) as its metadata text; None: what the run recorded
    palette: str | None = None
    #: a folder of photos whose tiles join the parity check
    parity_images: Path | None = None
    #: tiles in each parity set
    parity_tiles: int = 32
    #: tiles per timed batch and timed rounds of the `optimize` comparison
    speed_batch: int = 256
    speed_rounds: int = 7


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename the value `old` to `new` everywhere in `graph`."""
    for node in graph.node:
        for names in (node.input, node.output):
            for i, name in enumerate(names):
                if name == old:
                    names[i] = new
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.name == old:
            value.name = new


def to_onnx(network, contract: ModelContract, opset: int = MIN_OPSET,
            inputs_as_nchw: bool = False) -> onnx.ModelProto:
    """Convert a Keras network with tf2onnx (the tf.function path, which serves Keras 3 Sequential and
    functional models alike) to an ONNX graph: input `contract.input_name` [N, T, T, 1] float32, output
    `contract.output_name` [N, T, T, 2] float32, batch dimension symbolic ("N"). No metadata yet.

    `inputs_as_nchw` makes the input channels-first [N, 1, T, T] (tf2onnx's own layout option); the contract
    wants NHWC, so only the layout benchmark sets it.
    """
    if opset < MIN_OPSET:
        raise OppyError(f"opset {opset} is too old: use {MIN_OPSET} or newer")
    import tensorflow as tf
    import tf2onnx

    tile = contract.tile_size
    names = [contract.input_name] + ([contract.context_input] if contract.context_input is not None else [])
    spec = tuple(tf.TensorSpec((None, tile, tile, 1), tf.float32, name=name) for name in names)

    if contract.context_input is None:
        @tf.function(input_signature=spec)
        def forward(lightness):
            return keras_ab(network, lightness)
    else:
        @tf.function(input_signature=spec)
        def forward(lightness, context):
            return keras_ab(network, lightness, context)

    # TensorFlow lower-cases argument names ("L" becomes "l"); tf2onnx ignores an inputs_as_nchw name that
    # does not match exactly (with ":0" it matches nothing), so ask the traced graph for the name.
    traced = forward.get_concrete_function().inputs[0].name.split(":")[0]
    proto, _ = tf2onnx.convert.from_function(forward, input_signature=spec, opset=opset,
                                             inputs_as_nchw=[traced] if inputs_as_nchw else None)
    graph = proto.graph
    if len(graph.input) != len(names) or len(graph.output) != 1:
        raise ModelError(f"the converted graph has {len(graph.input)} inputs and {len(graph.output)} outputs; "
                         f"this colouriser has {len(names)} and 1")
    for value, name in zip(list(graph.input), names, strict=True):  # in the order of the signature
        _rename(graph, value.name, name)
    _rename(graph, graph.output[0].name, contract.output_name)
    for value in (*graph.input, graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    channels_first = graph.input[0].type.tensor_type.shape.dim[1].dim_value == 1
    if channels_first != inputs_as_nchw:
        raise RuntimeError(f"tf2onnx did not honour inputs_as_nchw={inputs_as_nchw} for input {traced!r}")
    onnx.checker.check_model(proto)
    return proto


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float16 copy of `model` (onnxconverter-common) whose input and output stay float32."""
    from onnxconverter_common import float16

    return float16.convert_float_to_float16(model, keep_io_types=True)


def sibling(out: Path, kind: str) -> Path:
    """`model.onnx` -> `model.KIND.onnx`, beside it."""
    return out.with_name(f"{out.stem}.{kind}{out.suffix}")


def _partial(path: Path) -> Path:
    return temporary_name(path)


def _finish(model: onnx.ModelProto, partial: Path, target: Path, contract: ModelContract, exporter: dict,
            parity: Parity) -> dict:
    """Record the passed parity check in the model's exporter metadata and give it its name."""
    onnx.save(stamp(model, with_exporter(contract, {**exporter, "parity": parity.as_dict()})), partial)
    os.replace(partial, target)
    return {"path": str(target), "bytes": target.stat().st_size, "parity": parity.as_dict()}


def _checked(parity: Parity, what: str) -> Parity:
    if not parity.ok:
        raise ModelError(
            f"{what} differs from the Keras model by up to {parity.worst:.3g} in raw ab ({parity.max_abs}), more "
            f"than the tolerance {parity.tolerance:g}: it was not written; try another --opset and report it"
        )
    return parity


def _write_checked(model: onnx.ModelProto, target: Path, contract: ModelContract, exporter: dict, network,
                   tiles: dict[str, np.ndarray], tolerance: float, provider: str) -> dict:
    """Write `model` under `target` only if it matches `network` within `tolerance` on every tile set."""
    partial = _partial(target)
    try:
        onnx.save(stamp(model, with_exporter(contract, exporter)), partial)
        parity = _checked(check_parity(network, partial, tiles, tolerance, provider), str(target))
        return _finish(model, partial, target, contract, exporter, parity)
    finally:
        partial.unlink(missing_ok=True)


def _write_optimized(plain: Path, target: Path, contract: ModelContract, exporter: dict, network,
                     tiles: dict[str, np.ndarray], options: ExportOptions) -> dict:
    """ONNX Runtime's offline-optimized graph of `plain` (level "extended": fusions, but no blocked CPU layout,
    which would tie the file to this CPU's vector width), kept only if it checks out and runs faster."""
    partial = _partial(target)
    try:
        cpu_session(plain, "extended", save_to=partial)
        optimized = onnx.load(partial)
        exporter = {**exporter, "ort_optimized": "extended, CPUExecutionProvider"}
        onnx.save(stamp(optimized, with_exporter(contract, exporter)), partial)
        parity = _checked(check_parity(network, partial, tiles, FP32_TOLERANCE, "cpu"), str(target))
        every = np.concatenate(list(tiles.values()))
        batch = every[np.arange(options.speed_batch) % len(every)]
        times = alternating_times({"plain": runner(cpu_session(plain), batch),
                                   "optimized": runner(cpu_session(partial), batch)}, options.speed_rounds)
        seconds = {name: float(np.median(t)) for name, t in times.items()}
        report = {"seconds_per_batch": seconds, "batch": options.speed_batch, "rounds": options.speed_rounds,
                  "speedup": seconds["plain"] / seconds["optimized"], "margin": OPTIMIZE_MARGIN}
        if seconds["optimized"] > seconds["plain"] * (1 - OPTIMIZE_MARGIN):
            log.info("the ORT-optimized graph is not faster (%.4f s vs %.4f s a batch): not written",
                     seconds["optimized"], seconds["plain"])
            return {**report, "path": None, "parity": parity.as_dict()}
        return {**report, **_finish(optimized, partial, target, contract, exporter, parity)}
    finally:
        partial.unlink(missing_ok=True)


def export_model(source: str | Path, out: str | Path, options: ExportOptions = ExportOptions()) -> dict:
    """Export the network of a run directory or .keras file to `out` (.onnx) with the model contract in its
    metadata, checked against TensorFlow; returns a report of what was written and measured.

    Raises `ModelError` when the network cannot be read or converted, or a file fails its parity check (it is
    then not written).
    """
    out = Path(out)
    if not out.parent.is_dir():
        raise OppyError(f"cannot write {str(out)!r}: its folder does not exist")
    network, run_dir = load_network(source)
    contract = run_contract(run_dir, network.name, network_tile(network), options.overlap, options.scene_size,
                            options.palette)
    tiles = parity_tiles(contract, options.parity_images, options.parity_tiles)
    exporter = {"tools": exporter_versions(), "opset": options.opset, "source": str(source),
                "precision": "float32"}
    model = to_onnx(network, contract, options.opset)
    exporter["graph_rewrites"] = {FOLD_RECORD: fold_nearest_upsampling(model)}
    report = {"source": str(source), "run_dir": str(run_dir) if run_dir else None,
              "contract": contract.to_metadata(),
              "float32": _write_checked(model, out, contract, exporter, network, tiles, FP32_TOLERANCE, "cpu")}
    log.info("wrote %s: max |Δab| %.3g against TensorFlow", out,
             max(report["float32"]["parity"]["max_abs_ab"].values()))
    if options.fp16:
        # on a GPU the check covers float16 arithmetic; ONNX Runtime's CPU provider computes most float16
        # operators in float32 (it inserts casts), so there it covers the rounding of weights and activations
        provider = "cuda" if "CUDAExecutionProvider" in choose_providers("cuda")[0] else "cpu"
        fp16_exporter = {**exporter, "tools": exporter_versions(("onnxconverter-common",)),
                         "precision": "float16 (float32 input and output)"}
        report["float16"] = _write_checked(to_fp16(model), sibling(out, "fp16"), contract, fp16_exporter, network,
                                           tiles, FP16_TOLERANCE, provider)
    if options.optimize:
        report["optimized"] = _write_optimized(out, sibling(out, "optimized"), contract, exporter, network, tiles,
                                               options)
    return report
