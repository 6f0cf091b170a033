from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from oppy.bench.flops import flops_per_tile
from oppy.bench.models import build_seed_standin, build_unet_standin, seed_flops_per_tile


def conv(size: int, cin: int, cout: int) -> int:
    return 2 * size * size * cout * cin * 9


def test_the_seed_stand_in_counts_what_the_architecture_says(tmp_path):
    for width in (1.0, 0.25):
        model = build_seed_standin(tmp_path / f"seed{width}.onnx", width=width)
        counted = flops_per_tile(model)
        assert counted["flops_per_tile"] == seed_flops_per_tile(width=width)
        assert counted["uncounted_nodes"] == []


def test_the_unet_stand_in_counts_each_convolution_once_per_tile_whatever_the_batch(tmp_path):
    w = 24
    expected = (conv(32, 1, w) + conv(32, w, w) + conv(16, w, 2 * w) + conv(16, 2 * w, 2 * w)
                + conv(8, 2 * w, 4 * w) + conv(8, 4 * w, 4 * w) + conv(8, 4 * w, 4 * w)
                + conv(16, 6 * w, 2 * w) + conv(16, 2 * w, 2 * w) + conv(32, 3 * w, w) + conv(32, w, 2))
    model = build_unet_standin(tmp_path / "unet.onnx")
    assert flops_per_tile(model)["flops_per_tile"] == expected == 128_729_088  # the trained unet's 0.13 GFLOP
    assert flops_per_tile(model, batch=8)["flops_per_tile"] == expected


def _graph(path: Path, nodes, inputs, output, initializers) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, [output], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_matmul_gemm_and_transposed_convolutions_are_counted_by_their_shapes(tmp_path):
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.random((16, 8), dtype=np.float32), "m"),
               numpy_helper.from_array(rng.random((4, 8), dtype=np.float32), "g"),
               numpy_helper.from_array(rng.random((3, 5, 2, 2), dtype=np.float32), "t")]
    nodes = [helper.make_node("MatMul", ["x", "m"], ["y"]),  # [N, 3, 16] x [16, 8]
             helper.make_node("Reshape", ["y", "shape"], ["z"]),
             helper.make_node("Gemm", ["z", "g"], ["v"], transB=1),  # [3N, 8] x [8, 4]
             helper.make_node("ConvTranspose", ["c", "t"], ["d"], strides=[2, 2])]  # [N, 3, 4, 4] -> [N, 5, 8, 8]
    weights.append(numpy_helper.from_array(np.array([-1, 8], np.int64), "shape"))
    path = _graph(tmp_path / "ops.onnx", nodes,
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16]),
                   helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N", 3, 4, 4])],
                  helper.make_tensor_value_info("v", TensorProto.FLOAT, None), weights)
    nodes_out = onnx.load(path)
    nodes_out.graph.output.append(helper.make_tensor_value_info("d", TensorProto.FLOAT, None))
    onnx.save(nodes_out, path)
    counted = flops_per_tile(path)
    assert counted["by_op"]["MatMul"] == 2 * 3 * 16 * 8
    assert counted["by_op"]["ConvTranspose"] == 2 * 3 * 4 * 4 * 5 * 2 * 2
    assert counted["by_op"]["Gemm"] == 2 * 3 * 8 * 4  # the Reshape's target is a constant: its shape is inferred
    assert counted["flops_per_tile"] == sum(counted["by_op"].values())
    assert counted["uncounted_nodes"] == []


def test_a_node_whose_shapes_are_unknown_is_named_not_guessed(tmp_path):
    weight = numpy_helper.from_array(np.ones((16, 8), np.float32), "m")
    path = _graph(tmp_path / "unknown.onnx", [helper.make_node("MatMul", ["x", "m"], ["y"], name="mystery")],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "K", 16])],
                  helper.make_tensor_value_info("y", TensorProto.FLOAT, None), [weight])
    counted = flops_per_tile(path)
    assert counted["uncounted_nodes"] == ["mystery"]
    assert counted["flops_per_tile"] == 0
