"""Stand-in models for benchmarks: the seed and unet architectures as ONNX graphs with random weights.

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


class _Graph:
    """An NCHW graph under construction: nodes, random He-initialised weights, fresh value names."""

    def __init__(self, seed: int):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.rng = np.random.default_rng(seed)
        self.nodes = [helper.make_node("Transpose", ["L"], ["x0"], perm=[0, 3, 1, 2])]  # NHWC in
        self.weights: list = []
        self.count = 0

    def _name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def conv(self, x: str, channels_in: int, channels_out: int, stride: int = 1, activation: str = "Relu") -> str:
        """A 3x3 convolution padded like Keras' 'same' (stride 2: one pixel after, none before), then
        `activation`."""
        kernel = self.rng.normal(0, np.sqrt(2 / (9 * channels_in)), (channels_out, channels_in, 3, 3))
        w, b, conv, out = (self._name(s) for s in ("w", "b", "conv", "x"))
        self.weights += [self.numpy_helper.from_array(kernel.astype(np.float32), w),
                         self.numpy_helper.from_array(np.zeros(channels_out, np.float32), b)]
        self.nodes.append(self.helper.make_node("Conv", [x, w, b], [conv], kernel_shape=[3, 3],
                                                strides=[stride, stride],
                                                pads=[1, 1, 1, 1] if stride == 1 else [0, 0, 1, 1]))
        self.nodes.append(self.helper.make_node(activation, [conv], [out]))
        return out

    def up(self, x: str, mode: str = "nearest") -> str:
        """2x upsampling (`mode` "nearest" or "linear")."""
        scale, out = self._name("scale"), self._name("x")
        self.weights.append(self.numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), scale))
        self.nodes.append(self.helper.make_node("Resize", [x, "", scale], [out], mode=mode))
        return out

    def concat(self, *xs: str) -> str:
        out = self._name("x")
        self.nodes.append(self.helper.make_node("Concat", list(xs), [out], axis=1))
        return out

    def save(self, last: str, path: str | Path, name: str, architecture: str, tile: int) -> Path:
        """Close the graph (NHWC out), stamp the model contract and write it to `path`."""
        import onnx
        from onnx import TensorProto

        helper = self.helper
        self.nodes.append(helper.make_node("Transpose", [last], ["ab"], perm=[0, 2, 3, 1]))
        for i, node in enumerate(self.nodes):  # named nodes: onnxconverter-common's float16 pass needs them
            node.name = f"{node.op_type.lower()}_{i}"
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info("L", TensorProto.FLOAT, ["N", tile, tile, 1])],
            [helper.make_tensor_value_info("ab", TensorProto.FLOAT, ["N", tile, tile, 2])], self.weights,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        contract = ModelContract("L", "ab", tile, l_scale=0.01, l_shift=0.0, ab_scale=128.0,
                                 info={KEY_ARCHITECTURE: architecture})
        for key, value in contract.to_metadata().items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, str(path))
        return Path(path)


def build_seed_standin(path: str | Path, width: float = 1.0, tile: int = 64, seed: int = 0) -> Path:
    """Write the seed architecture (channel counts times `width`) with random weights as an ONNX model."""
    graph = _Graph(seed)
    x, channels = "x0", 1
    for layer in SEED_LAYERS:
        if layer == "up":
            x = graph.up(x)
            continue
        out, stride = layer
        out = 2 if out == 2 else max(1, int(out * width))
        x = graph.conv(x, channels, out, stride, "Tanh" if out == 2 else "Relu")
        channels = out
    return graph.save(x, path, "seed_standin", f"seed-standin-x{width:g}", tile)


def build_unet_standin(path: str | Path, width: int = 24, tile: int = 64, seed: int = 0) -> Path:
    """Write the `unet` architecture of training/architectures.py (the default model's) with random weights:
    the same convolutions, skips and upsamplings, layer for layer, built without TensorFlow."""
    g = _Graph(seed)
    s32 = g.conv(g.conv("x0", 1, width, 2), width, width)
    s16 = g.conv(g.conv(s32, width, 2 * width, 2), 2 * width, 2 * width)
    s8 = g.conv(g.conv(s16, 2 * width, 4 * width, 2), 4 * width, 4 * width)
    x = g.up(g.conv(s8, 4 * width, 4 * width))
    x = g.conv(g.concat(x, s16), 6 * width, 2 * width)
    x = g.up(g.conv(x, 2 * width, 2 * width))
    x = g.conv(g.concat(x, s32), 3 * width, width)
    x = g.up(g.conv(x, width, 2, activation="Tanh"), mode="linear")
    return g.save(x, path, "unet_standin", f"unet-standin-w{width}", tile)


def build_free_standin(path: str | Path, tile: int = 64) -> Path:
    """Write a model that does no work worth the name: its ab output is its L input, twice (one pass over
    memory). With it, the engine's end-to-end rate is the host's ceiling: what everything around the model
    (decode, LAB, tiling, packing and copies, blending, encoding) allows when inference is free."""
    graph = _Graph(0)
    graph.nodes.append(graph.helper.make_node("Concat", ["x0", "x0"], ["pair"], axis=1))
    return graph.save("pair", path, "free_standin", "free-standin", tile)


def benchmark_model(model: str | Path | None, workdir: str | Path) -> tuple[Path, str]:
    """The model a benchmark runs and what it is: `model` if given; else the packaged default model; else, while
    this installation carries none, a unet stand-in (the default's architecture) written into `workdir`."""
    if model is not None:
        return Path(model), str(model)
    from oppy.engine.api import DEFAULT_MODEL

    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL, f"packaged default model ({DEFAULT_MODEL.name})"
    path = build_unet_standin(Path(workdir) / "unet-standin.onnx")
    return path, "unet stand-in with random weights (no packaged default model yet; same cost as a trained unet)"
