"""Rewrites of a converted ONNX graph that ONNX Runtime does not do itself, each exact and checked to be.

tf2onnx turns Keras's nearest `UpSampling2D` into two repeats (Unsqueeze, Tile, Reshape each) in channels-last
order between two transposes; one `Resize` (nearest) on the channels-first tensor computes the same values.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from oppy.engine.contract import KEY_EXPORTER, ModelContract
from oppy.engine.errors import ModelError, OppyError
from oppy.engine.outputs.files import temporary_name

from .metadata import _compact

log = logging.getLogger(__name__)

#: the name under which an exporter record (`graph_rewrites`) counts the folds
FOLD_RECORD = "nearest_upsampling_to_resize"
#: Resize(nearest) that copies every value into a 2x2 block: source index = floor(output index / 2), exactly
_NEAREST_2X = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
_TO_CHANNELS_LAST_5D = [0, 2, 3, 4, 1]
_TO_CHANNELS_FIRST = [0, 3, 1, 2]
_TO_CHANNELS_LAST = [0, 2, 3, 1]


def _constant(graph: onnx.GraphProto, name: str) -> np.ndarray | None:
    for initializer in graph.initializer:
        if initializer.name == name:
            return numpy_helper.to_array(initializer)
    return None


def _attribute(node: onnx.NodeProto, name: str):
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return None


class _Graph:
    """Who consumes each value, to follow a chain of single-consumer nodes."""

    def __init__(self, graph: onnx.GraphProto):
        self.graph = graph
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.outputs = {value.name for value in graph.output}

    def next(self, node: onnx.NodeProto, op_type: str) -> onnx.NodeProto | None:
        """The one consumer of `node`'s output of type `op_type` (others may only read its shape), or None."""
        if len(node.output) != 1 or node.output[0] in self.outputs:
            return None
        consumers = self.consumers.get(node.output[0], [])
        chained = [c for c in consumers if c.op_type == op_type and c.input[0] == node.output[0]]
        if len(chained) != 1 or any(c.op_type != "Shape" for c in consumers if c is not chained[0]):
            return None
        return chained[0]

    def is_repeat(self, unsqueeze: onnx.NodeProto) -> onnx.NodeProto | None:
        """The Tile of `unsqueeze` if the pair doubles axis 3 of a 5-D tensor (Keras's repeat), else None."""
        if unsqueeze.op_type != "Unsqueeze" or len(unsqueeze.input) != 2:
            return None
        axes = _constant(self.graph, unsqueeze.input[1])
        tile = self.next(unsqueeze, "Tile")
        if axes is None or axes.tolist() != [3] or tile is None:
            return None
        repeats = _constant(self.graph, tile.input[1])
        return tile if repeats is not None and repeats.tolist() == [1, 1, 1, 2, 1] else None


def _match_upsampling(graph: _Graph, first: onnx.NodeProto) -> tuple[list[onnx.NodeProto], bool] | None:
    """The nodes of one nearest 2x upsampling starting at `first` (an Unsqueeze of a channels-first tensor) and
    whether it ends channels-first (a Transpose back) rather than channels-last (a graph output, say)."""
    tile = graph.is_repeat(first)
    to_last = tile and graph.next(tile, "Transpose")
    if not to_last or _attribute(to_last, "perm") != _TO_CHANNELS_LAST_5D:
        return None
    reshape = graph.next(to_last, "Reshape")
    second = reshape and graph.next(reshape, "Unsqueeze")
    second_tile = second and graph.is_repeat(second)
    last = second_tile and graph.next(second_tile, "Reshape")
    if not last:
        return None
    nodes = [first, tile, to_last, reshape, second, second_tile, last]
    to_first = graph.next(last, "Transpose")
    if to_first is not None and _attribute(to_first, "perm") == _TO_CHANNELS_FIRST:
        return [*nodes, to_first], True
    return nodes, False


def _prune(graph: onnx.GraphProto) -> None:
    """Drop the nodes and initializers no graph output depends on (the repeats' shape arithmetic), and the graph
    inputs that only named such initializers (older models list initializers as inputs too)."""
    needed = {value.name for value in graph.output}
    live = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            live.append(node)
            needed.update(name for name in node.input if name)
    live.reverse()
    del graph.node[:]
    graph.node.extend(live)
    dropped = {initializer.name for initializer in graph.initializer} - needed
    for field in (graph.initializer, graph.value_info, graph.input):
        kept = [value for value in field if value.name not in dropped and (field is not graph.value_info
                                                                            or value.name in needed)]
        del field[:]
        field.extend(kept)


def _has_subgraphs(graph: onnx.GraphProto) -> bool:
    """Whether a node carries a graph of its own (If, Loop, Scan), whose reads `_prune` cannot see."""
    return any(attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for node in graph.node for attribute in node.attribute)


def _fold(model: onnx.ModelProto) -> int:
    graph = model.graph
    folded = 0
    while True:
        view = _Graph(graph)
        match = next((m for node in graph.node if node.op_type == "Unsqueeze"
                      and (m := _match_upsampling(view, node))), None)
        if match is None:
            break
        nodes, ends_channels_first = match
        source, result = nodes[0].input[0], nodes[-1].output[0]
        prefix = f"oppy_upsample_{folded}"
        scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), f"{prefix}_scales")
        graph.initializer.append(scales)
        resized = result if ends_channels_first else f"{prefix}_nchw"
        replacement = [helper.make_node("Resize", [source, "", scales.name], [resized], name=prefix, **_NEAREST_2X)]
        if not ends_channels_first:
            replacement.append(helper.make_node("Transpose", [resized], [result], name=f"{prefix}_to_nhwc",
                                                perm=_TO_CHANNELS_LAST))
        position = min(i for i, node in enumerate(graph.node) if node in nodes)
        removed = {id(node) for node in nodes}
        kept = [node for node in graph.node if id(node) not in removed]
        kept[position:position] = replacement
        del graph.node[:]
        graph.node.extend(kept)
        folded += 1
    if folded:
        _prune(graph)
        onnx.checker.check_model(model)
    return folded


def fold_nearest_upsampling(model: onnx.ModelProto) -> int:
    """Replace each nearest 2x upsampling tf2onnx wrote as repeats by one Resize on the channels-first tensor
    (followed by a transpose where the repeats' result was channels-last); in place. Returns how many.

    The match reads the operators, not the shapes the repeats' Reshapes compute, so every fold is checked: the
    model's outputs must stay identical (`check_same_outputs`), else it is left as it was, with a warning. A
    graph with subgraphs (If, Loop) is left alone."""
    if _has_subgraphs(model.graph):
        return 0
    original = onnx.ModelProto()
    original.CopyFrom(model)
    folded = _fold(model)
    if folded:
        try:
            check_same_outputs(original, model)
        except ModelError as exc:
            log.warning("upsampling fold undone: %s", exc)
            model.CopyFrom(original)
            return 0
    return folded


def check_same_outputs(before: onnx.ModelProto, after: onnx.ModelProto, batches: tuple[int, ...] = (1, 5),
                       seed: int = 0, symbolic_size: int = 64) -> None:
    """Raise ModelError unless both models give identical outputs on random inputs (each input of its shape) at
    each batch size (other symbolic dimensions: `symbolic_size`). CPU provider, graph optimizations off, so that
    both run the same kernels where their operators agree."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sessions = [ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])
                for m in (before, after)]
    rng = np.random.default_rng(seed)
    for batch in batches:
        feed = {node.name: rng.uniform(-1, 1, [batch, *(d if isinstance(d, int) else symbolic_size
                                                        for d in node.shape[1:])]).astype(np.float32)
                for node in sessions[0].get_inputs()}
        for old, new in zip(*(s.run(None, feed) for s in sessions), strict=True):
            if old.shape != new.shape or not np.array_equal(old, new):
                difference = np.abs(old - new).max() if old.shape == new.shape else f"shape {new.shape}"
                raise ModelError(f"the rewritten graph differs from the original at batch {batch} ({difference})")


def _record(model: onnx.ModelProto, rewrites: dict[str, int]) -> None:
    """Add `rewrites` to the exporter record in the model's metadata, where it has one."""
    for prop in model.metadata_props:
        if prop.key == KEY_EXPORTER:
            exporter = json.loads(prop.value)
            exporter["graph_rewrites"] = {**exporter.get("graph_rewrites", {}), **rewrites}
            prop.value = _compact(exporter)


def _set_metadata(model: onnx.ModelProto, entries: dict[str, str], source: str) -> None:
    """Set `entries` in the model's `metadata_props`, refusing a result that breaks the model contract."""
    merged = {prop.key: prop.value for prop in model.metadata_props} | entries
    ModelContract.from_metadata(merged, source=repr(source))
    del model.metadata_props[:]
    for key, value in merged.items():
        model.metadata_props.add(key=key, value=value)


def rewrite_file(source: str | Path, out: str | Path, metadata: dict[str, str] | None = None) -> int:
    """`fold_nearest_upsampling` on the model in `source`, written to `out` (metadata kept, the rewrite added to
    its exporter record, and the entries of `metadata` set, checked against the model contract; `out` may be
    `source`: it is replaced only once the new file is whole); returns how many upsamplings were folded."""
    out = Path(out)
    if not out.parent.is_dir():
        raise OppyError(f"cannot write {str(out)!r}: its folder does not exist")
    try:
        model = onnx.load(str(source))
    except (OSError, DecodeError) as exc:
        raise ModelError(f"cannot read the ONNX model {str(source)!r}: {exc}") from exc
    if metadata:
        _set_metadata(model, metadata, str(source))
    folded = fold_nearest_upsampling(model)
    if folded:
        _record(model, {FOLD_RECORD: folded})
    partial = temporary_name(out)
    try:
        onnx.save(model, str(partial))
        os.replace(partial, out)
    except OSError as exc:
        raise OppyError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return folded
