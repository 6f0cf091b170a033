import numpy as np
import pytest

from oppy.training.data import CONTRACT, tile_dataset


def test_input_pipeline_yields_declared_shapes_dtypes_and_ranges(lawful_dataset):
    batches = list(tile_dataset(lawful_dataset, "train", batch_size=16, crops_per_photo=4).take(3))
    assert len(batches) == 3
    for lightness, ab in batches:
        assert lightness.shape == (16, 64, 64, 1) and ab.shape == (16, 64, 64, 2)
        assert lightness.dtype.name == ab.dtype.name == "float32"
        assert float(np.min(lightness)) >= -1 and float(np.max(lightness)) <= 1
        assert float(np.max(np.abs(ab))) <= 1
    # the ab targets are the engine's LAB of the photo, scaled per the contract: the colour law holds
    lightness = (batches[0][0].numpy()[..., 0] - CONTRACT.l_shift) / CONTRACT.l_scale
    a = batches[0][1].numpy()[..., 0] * CONTRACT.ab_scale
    assert np.median(np.abs(a - 0.6 * (lightness - 50))) < 1.5


def test_validation_crops_are_fixed_and_training_crops_vary(lawful_dataset):
    def first(split, training=None):
        dataset = tile_dataset(lawful_dataset, split, batch_size=8, crops_per_photo=2, training=training)
        return next(iter(dataset))[0].numpy()

    np.testing.assert_array_equal(first("val"), first("val"))
    dataset = tile_dataset(lawful_dataset, "train", batch_size=8, crops_per_photo=2)
    epoch1, epoch2 = (next(iter(dataset))[0].numpy() for _ in range(2))
    assert not np.array_equal(epoch1, epoch2)


def test_missing_split_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="oppy-train prepare"):
        tile_dataset(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match=r"no validation photos.*--val-fraction"):
        tile_dataset(tmp_path, "val")
