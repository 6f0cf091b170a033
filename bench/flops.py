"""Floating-point operations per tile, read off an ONNX graph itself, so that any model can be put beside
its device's peak.

Counted: multiply-adds x 2 of Conv, ConvTranspose, MatMul and Gemm (bias additions, activations, resizes,
concatenations and element-wise operators are left out: they are memory-bound and a few percent at most).
"""

from __future__ import annotations

from math import prod
from pathlib import Path

import numpy as np

COUNTED = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def fix_batch(model, batch: int):
    """A copy of `model` (an onnx ModelProto) whose inputs' and outputs' symbolic batch dimension is `batch`,
    with shapes inferred throughout: static shapes, which a CUDA graph needs and which let ONNX Runtime fold the
    graph's shape arithmetic away."""
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch
    return onnx.shape_inference.infer_shapes(model)


def _shapes(model) -> dict[str, tuple[int, ...] | None]:
    """Every value's shape (None where a dimension is unknown), initializers included."""
    shapes: dict[str, tuple[int, ...] | None] = {}
    graph = model.graph
    for value in (*graph.input, *graph.value_info, *graph.output):
        dims = value.type.tensor_type.shape.dim
        known = all(d.HasField("dim_value") for d in dims)
        shapes[value.name] = tuple(d.dim_value for d in dims) if known else None
    for tensor in graph.initializer:
        shapes[tensor.name] = tuple(tensor.dims)
    return shapes


def _node_flops(node, shapes: dict) -> int | None:
    """Multiply-adds x 2 of one counted node; None when a shape it needs is unknown."""
    attrs = {a.name: a for a in node.attribute}
    if node.op_type == "Conv":
        out, weight = shapes.get(node.output[0]), shapes.get(node.input[1])
        if out is None or weight is None:
            return None
        # every output element: (input channels / group) x kernel multiply-adds
        return 2 * prod(out) * prod(weight[1:])
    if node.op_type == "ConvTranspose":
        x, weight = shapes.get(node.input[0]), shapes.get(node.input[1])
        if x is None or weight is None:
            return None
        # every input element is spread over (output channels / group) x kernel outputs
        return 2 * prod(x) * prod(weight[1:])
    a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
    if a is None or b is None:
        return None
    if node.op_type == "Gemm":
        trans_a = attrs["transA"].i if "transA" in attrs else 0
        trans_b = attrs["transB"].i if "transB" in attrs else 0
        m, k = (a[1], a[0]) if trans_a else (a[0], a[1])
        n = b[0] if trans_b else b[1]
        return 2 * m * k * n
    # MatMul: numpy semantics, a vector promoted to a matrix, batch dimensions broadcast
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    return 2 * prod(np.broadcast_shapes(a2[:-2], b2[:-2])) * a2[-2] * a2[-1] * b2[-1]


def flops_per_tile(model: str | Path, batch: int = 1) -> dict:
    """FLOPs of one tile of `model` (an .onnx path), from the graph with its batch fixed to `batch`.

    Returns {"flops_per_tile", "by_op": {op: flops}, "uncounted_nodes": [names whose shapes were unknown],
    "counted": what is counted}."""
    import onnx

    inferred = fix_batch(onnx.load(str(model)), batch)
    shapes = _shapes(inferred)
    by_op: dict[str, int] = {}
    unknown = []
    for node in inferred.graph.node:
        if node.op_type not in COUNTED:
            continue
        flops = _node_flops(node, shapes)
        if flops is None:
            unknown.append(node.name or node.output[0])
            continue
        by_op[node.op_type] = by_op.get(node.op_type, 0) + flops
    total = sum(by_op.values())
    return {"flops_per_tile": total // batch, "by_op": {op: f // batch for op, f in by_op.items()},
            "uncounted_nodes": unknown,
            "counted": "2 x multiply-adds of " + ", ".join(COUNTED) + " (biases, activations, resizes excluded)"}
