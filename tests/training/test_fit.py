import json

import keras
import numpy as np
import pytest

from oppy.training.architectures import build
from oppy.training.data import tile_dataset
from oppy.training.fit import FitOptions, fit


def val_loss(model, dataset_dir):
    lightness, ab = next(iter(tile_dataset(dataset_dir, "val", batch_size=32, crops_per_photo=8)))
    return float(np.mean(np.abs(np.asarray(model(lightness)) - ab.numpy())))


class Interrupt(keras.callbacks.Callback):
    """Stands for Ctrl-C after the given epoch has finished."""

    def __init__(self, after_epoch: int):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt


def test_fit_learns_and_resumes_after_an_interruption(lawful_dataset, tmp_path):
    run = tmp_path / "run"
    options = FitOptions(arch="unet", epochs=3, batch_size=16, crops_per_photo=8, learning_rate=3e-3,
                         jit_compile=False, verbose=0)
    keras.utils.set_random_seed(0)
    untrained = val_loss(build("unet"), lawful_dataset)
    with pytest.raises(KeyboardInterrupt):
        fit(lawful_dataset, run, options, extra_callbacks=(Interrupt(after_epoch=1),))
    assert (run / "model.keras").exists() and (run / "backup").exists()
    summary = fit(lawful_dataset, run, options)
    assert summary["epochs_run"] == 3  # epochs 0 and 1 were not run again
    assert summary["train_seconds"] > 0 and summary["loss"] == "l1"
    # The cosine decay went on from the restored step: restarted, it would end the run at 75% of its start.
    assert summary["final_learning_rate"] < 0.01 * options.learning_rate
    assert json.loads((run / "run.json").read_text())["architecture"] == "unet"
    trained = val_loss(keras.models.load_model(run / "model.keras", compile=False), lawful_dataset)
    assert trained < 0.7 * untrained


def test_training_data_repeats_for_as_many_steps_as_asked(lawful_dataset):
    dataset = tile_dataset(lawful_dataset, "train", batch_size=16, crops_per_photo=2).repeat()
    assert sum(1 for _ in dataset.take(12)) == 12  # 12 photos x 2 crops = 1.5 batches per pass


def test_a_context_classification_run_exports_and_renders_through_the_engine(lawful_dataset, tmp_path):
    from oppy.engine import Engine
    from oppy.export.convert import ExportOptions, export_model

    summary = fit(lawful_dataset, tmp_path / "run", FitOptions(arch="unet-context-classes", epochs=1, batch_size=16,
                                                               crops_per_photo=2, scale_jitter=0.5, jit_compile=False,
                                                               verbose=0, context_factor=2))
    assert summary["loss"] == "rebalanced-ce" and len(summary["class_weights"]) == 169
    assert summary["contract"]["oppy.context_input"] == "context" and summary["contract"]["oppy.context_factor"] == "2"
    report = export_model(tmp_path / "run", tmp_path / "model.onnx", ExportOptions(fp16=False, optimize=False))
    assert report["float32"]["parity"]["ok"]
    grey = (np.random.default_rng(0).uniform(0, 255, (100, 140))).astype(np.uint8)
    with Engine(tmp_path / "model.onnx", provider="cpu") as engine:
        assert engine.contract.context_factor == 2  # the window it was trained with, from its metadata
        assert engine.colorize(grey).shape == (100, 140, 3)


def test_a_context_factor_outside_the_contracts_range_is_refused(lawful_dataset, tmp_path):
    with pytest.raises(ValueError, match="context factor must be 2 to 16"):
        fit(lawful_dataset, tmp_path / "run", FitOptions(arch="unet-context", epochs=1, context_factor=1))


def test_a_warm_start_takes_the_weights_of_a_run_of_the_same_architecture(tmp_path):
    from oppy.training.fit import _warm_start

    keras.utils.set_random_seed(1)
    trained = build("unet")
    trained.save(tmp_path / "model.keras")
    keras.utils.set_random_seed(2)
    fresh = build("unet")
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), trained.get_weights(), strict=True))
    _warm_start(fresh, tmp_path)  # a run directory holding model.keras
    assert all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), trained.get_weights(), strict=True))
    with pytest.raises(ValueError, match="same --arch"):
        _warm_start(build("unet-context"), tmp_path / "model.keras")
    with pytest.raises(FileNotFoundError, match=r"no model\.keras"):
        _warm_start(fresh, tmp_path / "elsewhere")


def test_an_augmented_warm_started_run_records_its_augmentation_and_palette(lawful_dataset, tmp_path):
    from oppy.engine.contract import KEY_PALETTE

    first = fit(lawful_dataset, tmp_path / "first", FitOptions(epochs=1, batch_size=16, crops_per_photo=2,
                                                                jit_compile=False, verbose=0))
    assert KEY_PALETTE in first["contract"]
    options = FitOptions(epochs=1, batch_size=16, crops_per_photo=2, jit_compile=False, verbose=0,
                         aug_exposure=2.0, aug_noise=6.0, init=str(tmp_path / "first"))
    summary = fit(lawful_dataset, tmp_path / "second", options)
    recorded = json.loads((tmp_path / "second" / "run.json").read_text())["options"]
    assert recorded["aug_exposure"] == 2.0 and recorded["aug_noise"] == 6.0 and recorded["init"].endswith("first")
    assert summary["epochs_run"] == 1
