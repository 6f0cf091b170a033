"""Stand-in models for benchmarks: the seed architecture as an ONNX graph with random weights.

A stand-in costs what the real network costs, so throughput measured with it holds for the trained model of
the same architecture; its colours are meaningless. Needs the `onnx` package (extra `bench`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from oppy.engine.contract import KEY_ARCHITECTURE, ModelContract

# (output channels, stride) of each 3x3 'same' ReLU convolution; "up" is a 2x nearest upsampling.
SEED_LAYERS = [(64, 1), (64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (256, 1), (128, 1), "up",
               (64, 1), "up", (32, 1), (2, 1), "up"]


def seed_flops_per_tile(tile: int = 64, width: float = 1.0) -> int:
    """Multiply-adds x 2 of the seed architecture for one tile (convolutions only)."""
    flops, channels, size = 0, 1, tile
    for layer in SEED_LAYERS:
        if layer == "up":
            size *= 2
            continue
        out, stride = layer
        out = 2 if out == 2 else max(1, int(out * width))
        size //= stride
        flops += 2 * size * size * out * channels * 9
        channels = out
    return flops


def build_seed_standin(path: str | Path, width: float = 1.0, tile: int = 64, seed: int = 0) -> Path:
    """Write the seed architecture (channel counts times `width`) with random weights as an ONNX model."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Transpose", ["L"], ["x0"], perm=[0, 3, 1, 2])]
    weights, channels, name = [], 1, "x0"
    layers = [layer for layer in SEED_LAYERS]
    for i, layer in enumerate(layers):
        out_name = f"x{i + 1}"
        if layer == "up":
            weights.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), f"scale{i}"))
            nodes.append(helper.make_node("Resize", [name, "", f"scale{i}"], [out_name], mode="nearest"))
        else:
            out, stride = layer
            out = 2 if out == 2 else max(1, int(out * width))
            kernel = rng.normal(0, np.sqrt(2 / (9 * channels)), (out, channels, 3, 3)).astype(np.float32)
            weights += [numpy_helper.from_array(kernel, f"w{i}"),
                        numpy_helper.from_array(np.zeros(out, np.float32), f"b{i}")]
            conv = f"conv{i}"
            nodes.append(helper.make_node("Conv", [name, f"w{i}", f"b{i}"], [conv], kernel_shape=[3, 3],
                                          strides=[stride, stride], pads=[1, 1, 1, 1] if stride == 1 else [0, 0, 1, 1]))
            nodes.append(helper.make_node("Tanh" if out == 2 else "Relu", [conv], [out_name]))
            channels = out
        name = out_name
    nodes.append(helper.make_node("Transpose", [name], ["ab"], perm=[0, 2, 3, 1]))
    graph = helper.make_graph(
        nodes, "seed_standin",
        [helper.make_tensor_value_info("L", TensorProto.FLOAT, ["N", tile, tile, 1])],
        [helper.make_tensor_value_info("ab", TensorProto.FLOAT, ["N", tile, tile, 2])], weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    contract = ModelContract("L", "ab", tile, l_scale=0.01, l_shift=0.0, ab_scale=128.0,
                             info={KEY_ARCHITECTURE: f"seed-standin-x{width:g}"})
    for key, value in contract.to_metadata().items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return Path(path)
