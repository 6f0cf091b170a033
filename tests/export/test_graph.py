import collections
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from oppy.engine.contract import KEY_EXPORTER
from oppy.engine.contract import TRAINING_CONTRACT as CONTRACT
from oppy.engine.errors import ModelError, OppyError
from oppy.export.cli import main as export_main
from oppy.export.convert import to_onnx
from oppy.export.graph import check_same_outputs, fold_nearest_upsampling, rewrite_file
from oppy.training.architectures import seed

N, C, H, W = 3, 4, 5, 6


def repeats_graph(end_channels_first: bool = True, extra_reader: bool = False,
                  rows: tuple[int, ...] = (-1, 2 * H, W, C)) -> onnx.ModelProto:
    """The shape of tf2onnx's nearest UpSampling2D on a channels-first [N, C, H, W] input: repeat rows, then
    columns, channels-last between two transposes. `extra_reader` lets another node read a repeat's result;
    `rows` is the shape of the first repeat's result."""
    constants = [numpy_helper.from_array(np.array(v, np.int64), name) for name, v in [
        ("axis3", [3]), ("twice", [1, 1, 1, 2, 1]), ("rows", list(rows)), ("both", [-1, 2 * H, 2 * W, C])]]
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Unsqueeze", ["a", "axis3"], ["u1"]),
        helper.make_node("Tile", ["u1", "twice"], ["t1"]),
        helper.make_node("Transpose", ["t1"], ["p1"], perm=[0, 2, 3, 4, 1]),
        helper.make_node("Shape", ["p1"], ["p1_shape"]),  # dead shape arithmetic, as tf2onnx leaves it
        helper.make_node("Reshape", ["p1", "rows"], ["r1"]),
        helper.make_node("Unsqueeze", ["r1", "axis3"], ["u2"]),
        helper.make_node("Tile", ["u2", "twice"], ["t2"]),
        helper.make_node("Reshape", ["t2", "both"], ["r2" if end_channels_first else "y"]),
    ]
    y_shape = ["N", C, 2 * H, 2 * W] if end_channels_first else ["N", 2 * H, 2 * W, C]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)]
    if end_channels_first:
        nodes.append(helper.make_node("Transpose", ["r2"], ["y"], perm=[0, 3, 1, 2]))
    if extra_reader:
        nodes.append(helper.make_node("Neg", ["t1"], ["z"]))
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", C, H, 2, W]))
    graph = helper.make_graph(nodes, "repeats", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", C, H, W])],
                              outputs, constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what the installed ONNX Runtime reads, whatever onnx writes by default
    return model


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


@pytest.mark.parametrize("end_channels_first", [True, False])
def test_the_repeats_become_one_resize_that_copies_each_value_into_a_2x2_block(end_channels_first):
    model = repeats_graph(end_channels_first)
    x = np.random.default_rng(0).normal(size=(N, C, H, W)).astype(np.float32)
    assert fold_nearest_upsampling(model) == 1
    ops = collections.Counter(node.op_type for node in model.graph.node)
    assert ops == ({"Relu": 1, "Resize": 1} if end_channels_first else {"Relu": 1, "Resize": 1, "Transpose": 1})
    assert {i.name for i in model.graph.initializer} == {"oppy_upsample_0_scales"}  # the repeats' constants went
    expected = np.repeat(np.repeat(np.maximum(x, 0), 2, axis=2), 2, axis=3)
    if not end_channels_first:
        expected = expected.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(run(model, x), expected)


def test_initializers_listed_as_inputs_go_with_the_repeats():
    model = repeats_graph()  # older exporters list initializers among the graph's inputs too
    model.graph.input.append(helper.make_tensor_value_info("twice", TensorProto.INT64, [5]))
    assert fold_nearest_upsampling(model) == 1
    assert [value.name for value in model.graph.input] == ["x"]


def test_a_repeat_whose_result_is_read_elsewhere_is_left_alone():
    model = repeats_graph(extra_reader=True)
    before = model.SerializeToString()
    assert fold_nearest_upsampling(model) == 0
    assert model.SerializeToString() == before


def test_the_same_operators_reshaping_otherwise_are_checked_and_left_alone(caplog):
    """Operators in the order of the repeats, but the first Reshape lays the rows out differently: not an
    upsampling, though the match reads only operators."""
    model = repeats_graph(rows=(-1, 2 * H, W * C, 1))
    before = model.SerializeToString()
    assert fold_nearest_upsampling(model) == 0
    assert model.SerializeToString() == before
    assert "upsampling fold undone" in caplog.text


def test_a_model_that_changed_is_caught():
    original = repeats_graph()
    changed = repeats_graph()
    changed.graph.node[0].op_type = "Abs"
    check_same_outputs(original, repeats_graph())
    with pytest.raises(ModelError, match="differs from the original"):
        check_same_outputs(original, changed)


def test_the_seeds_three_upsamplings_fold_and_give_the_same_tiles():
    """The seed ends on an upsampling whose result is the channels-last output: that one keeps a transpose."""
    converted = to_onnx(seed(), CONTRACT)
    folded = onnx.ModelProto()
    folded.CopyFrom(converted)
    assert fold_nearest_upsampling(folded) == 3
    ops = collections.Counter(node.op_type for node in folded.graph.node)
    assert ops["Resize"] == 3 and "Tile" not in ops
    check_same_outputs(converted, folded)


def test_rewrite_file_keeps_the_metadata_and_records_the_rewrite(tmp_path):
    model = repeats_graph()
    model.metadata_props.add(key="oppy.tile_size", value="64")
    model.metadata_props.add(key=KEY_EXPORTER, value='{"opset":17}')
    onnx.save(model, tmp_path / "in.onnx")
    assert rewrite_file(tmp_path / "in.onnx", tmp_path / "out.onnx") == 1
    written = {p.key: p.value for p in onnx.load(tmp_path / "out.onnx").metadata_props}
    assert written["oppy.tile_size"] == "64"
    assert json.loads(written[KEY_EXPORTER]) == {"opset": 17, "graph_rewrites": {"nearest_upsampling_to_resize": 1}}
    assert "Tile" not in {node.op_type for node in onnx.load(tmp_path / "out.onnx").graph.node}


def test_rewrite_file_replaces_its_source_in_place_and_wants_an_existing_folder(tmp_path):
    onnx.save(repeats_graph(), tmp_path / "m.onnx")
    assert rewrite_file(tmp_path / "m.onnx", tmp_path / "m.onnx") == 1
    assert "Resize" in {node.op_type for node in onnx.load(tmp_path / "m.onnx").graph.node}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no partial file left
    with pytest.raises(OppyError, match="folder does not exist"):
        rewrite_file(tmp_path / "m.onnx", tmp_path / "missing" / "m.onnx")


def test_oppy_export_rewrites_an_onnx_model_and_refuses_what_needs_keras(tmp_path, capsys):
    onnx.save(repeats_graph(), tmp_path / "in.onnx")
    assert export_main([str(tmp_path / "in.onnx"), str(tmp_path / "out.onnx")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["graph_rewrites"] == {"nearest_upsampling_to_resize": 1}
    assert (tmp_path / "out.onnx").is_file()
    assert export_main([str(tmp_path / "in.onnx"), str(tmp_path / "again.onnx"), "--fp16", "--overlap", "8"]) == 2
    assert "--overlap, --fp16 need the Keras network" in capsys.readouterr().err
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    assert export_main([str(tmp_path / "broken.onnx"), str(tmp_path / "x.onnx")]) == 2
    assert "cannot read the ONNX model" in capsys.readouterr().err


def test_oppy_export_sets_the_scene_size_of_an_onnx_model_and_changes_nothing_else(tmp_path, capsys):
    from tests.conftest import affine_model

    source = affine_model(tmp_path / "in.onnx", gain=(0.3, -0.2))
    assert export_main([str(source), str(tmp_path / "out.onnx"), "--scene-size", "300"]) == 0
    assert json.loads(capsys.readouterr().out)["metadata_set"] == {"oppy.scene_size": "300"}
    before, after = onnx.load(source), onnx.load(tmp_path / "out.onnx")
    assert before.graph.SerializeToString() == after.graph.SerializeToString()  # the weights untouched
    metadata = {p.key: p.value for p in after.metadata_props}
    assert metadata == {**{p.key: p.value for p in before.metadata_props}, "oppy.scene_size": "300"}
    # a scene smaller than the model's own tile is refused, and nothing is written
    assert export_main([str(source), str(tmp_path / "bad.onnx"), "--scene-size", "10"]) == 2
    assert "scene size of 10 px" in capsys.readouterr().err and not (tmp_path / "bad.onnx").exists()
