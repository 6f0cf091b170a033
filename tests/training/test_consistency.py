import json

import keras
import numpy as np
import pytest

from oppy.training.cli import main
from oppy.training.consistency import MAX_SHIFT_RANGE, SaveBest, ShiftDisagreement, align, paired
from oppy.training.data import TILE, random_crops, tile_dataset
from oppy.training.fit import FitOptions, fit


@pytest.mark.parametrize("flip", [False, True])
def test_a_crop_and_its_partner_show_the_same_ground_where_they_overlap(flip):
    lab = np.random.default_rng(3).uniform(0, 100, (150, 170, 3)).astype(np.float32)
    crops, context, partners, partner_context, down, right = random_crops(
        lab, 40, np.random.default_rng(1), flip, context_factor=4, shift_range=8)
    assert context.shape == partner_context.shape == (40, TILE, TILE, 1)
    assert np.abs(down).max() <= 8 and np.abs(right).max() <= 8 and np.any(down != 0) and np.any(right != 0)
    # the crops themselves as answers: a model that follows the ground exactly disagrees nowhere
    assert np.abs(np.asarray(ShiftDisagreement()(crops, partners, down, right))).max() == 0
    for crop, partner, d, r in zip(crops, partners, down, right, strict=True):
        moved, mask = align(partner, int(d), int(r))
        assert np.array_equal(mask * crop, mask * moved)
        assert mask.sum() == (TILE - abs(d)) * (TILE - abs(r))


def test_the_disagreement_layer_matches_a_plain_numpy_reference():
    rng = np.random.default_rng(7)
    answers, partners = rng.normal(size=(2, 12, TILE, TILE, 2)).astype(np.float32)
    down, right = rng.integers(-20, 21, (2, 12)).astype(np.int32)
    layer = np.asarray(ShiftDisagreement()(answers, partners, down, right))
    for k in range(12):
        moved, mask = align(partners[k], int(down[k]), int(right[k]))
        np.testing.assert_allclose(layer[k], mask * (answers[k] - moved), atol=1e-6)


def test_pairs_come_batched_for_the_training_graph_and_the_same_every_validation_pass(lawful_dataset):
    dataset = tile_dataset(lawful_dataset, "val", batch_size=8, crops_per_photo=2, context_factor=4, shift_range=4)
    (inputs, targets), = dataset.take(1)
    again, = tile_dataset(lawful_dataset, "val", batch_size=8, crops_per_photo=2, context_factor=4,
                          shift_range=4).take(1)
    assert set(inputs) == {"L", "L_partner", "context", "context_partner", "down", "right"}
    assert set(targets) == {"ab", "ab_partner", "disagreement"} and not np.any(targets["disagreement"])
    assert all(np.array_equal(inputs[k], again[0][k]) for k in inputs)


def test_the_training_graph_wraps_the_network_without_weights_of_its_own():
    from oppy.training.architectures import build

    network = build("unet-context")
    graph = paired(network)
    assert len(graph.weights) == len(network.weights)
    assert {"L", "context", "L_partner", "context_partner", "down", "right"} == {i.name for i in graph.inputs}


def test_a_shift_consistent_run_saves_the_network_itself_and_exports(lawful_dataset, tmp_path):
    from oppy.export.convert import ExportOptions, export_model

    options = FitOptions(arch="unet-context", epochs=2, batch_size=16, crops_per_photo=2, jit_compile=False,
                         verbose=0, shift_consistency=2.0, shift_range=6)
    summary = fit(lawful_dataset, tmp_path / "run", options)
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    header = log[0].split(",")
    assert "val_disagreement_loss" in header
    column = header.index("val_ab_loss")
    assert summary["best_val_loss"] == min(float(row.split(",")[column]) for row in log[1:])
    saved = keras.models.load_model(tmp_path / "run" / "model.keras", compile=False)
    assert saved.name == "unet-context" and [i.name for i in saved.inputs] == ["L", "context"]
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["options"]
    assert recorded["shift_consistency"] == 2.0 and recorded["shift_range"] == 6
    report = export_model(tmp_path / "run", tmp_path / "model.onnx", ExportOptions(fp16=False, optimize=False))
    assert report["float32"]["parity"]["ok"]
    with pytest.raises(ValueError, match="resumes with the objective it began with"):
        fit(lawful_dataset, tmp_path / "run", FitOptions(arch="unet-context", epochs=3, verbose=0))


def test_the_network_is_saved_only_when_the_crops_own_loss_improves(tmp_path):
    network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = tmp_path / "model.keras"
    saver = SaveBest(network, str(path), "val_ab_loss", best=0.5)  # the best an interrupted run logged

    def saved():
        return keras.models.load_model(path, compile=False).get_weights()[0]

    saver.on_epoch_end(0, {"val_ab_loss": 0.6, "val_loss": 0.1})
    assert not path.exists()
    saver.on_epoch_end(1, {"val_ab_loss": 0.4})
    best = network.get_weights()[0].copy()
    network.set_weights([w + 1 for w in network.get_weights()])
    saver.on_epoch_end(2, {"val_ab_loss": 0.45})
    np.testing.assert_array_equal(saved(), best)
    saver.on_epoch_end(3, {"val_ab_loss": 0.3})
    np.testing.assert_array_equal(saved(), best + 1)
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]  # nothing half-written left beside it


@pytest.mark.parametrize(("flags", "words"), [
    (["--shift-consistency", "-1"], "shift consistency weight must be in"),
    (["--shift-consistency", "nan"], "shift consistency weight must be in"),
    (["--shift-consistency", "1", "--shift-range", "0"], "shift range must be 1 to"),
    (["--shift-consistency", "1", "--shift-range", str(MAX_SHIFT_RANGE + 1)], "shift range must be 1 to"),
    (["--shift-consistency", "1", "--arch", "unet-context-classes"], "not a classification head"),
])
def test_oppy_train_fit_refuses_a_shift_consistency_out_of_range_in_one_line(lawful_dataset, tmp_path, capsys,
                                                                             flags, words):
    assert main(["fit", str(lawful_dataset), "--out", str(tmp_path / "run"), *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and words in error
