import numpy as np
import pytest

from oppy.engine.contract import TRAINING_CONTRACT as CONTRACT
from oppy.engine.kernels.context import context_copy, cut_context
from oppy.training.data import jittered, random_crops, tile_dataset


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
    with pytest.raises(FileNotFoundError, match=r"no validation photos.*another day.*--splits"):
        tile_dataset(tmp_path, "val")


def test_context_crops_are_the_engines_context_of_each_crop():
    rng = np.random.default_rng(3)
    lab = np.dstack([rng.uniform(0, 100, (120, 200)), rng.uniform(-20, 20, (120, 200, 2))]).astype(np.float32)
    crops, context = random_crops(lab, 6, np.random.default_rng(5), flip=False, context_factor=4)
    replay = np.random.default_rng(5)  # the same draws random_crops made
    tops, lefts = replay.integers(0, 57, 6), replay.integers(0, 137, 6)
    expected = cut_context(context_copy(np.ascontiguousarray(lab[..., 0]), 4), tops, lefts, (120, 200), 64)
    np.testing.assert_array_equal(context, expected)
    np.testing.assert_array_equal(crops[0], lab[tops[0]:tops[0] + 64, lefts[0]:lefts[0] + 64])
    flipped_crops, flipped_context = random_crops(lab, 6, np.random.default_rng(5), flip=True, context_factor=4)
    mirrored = [i for i in range(6) if not np.array_equal(flipped_crops[i], crops[i])]
    assert mirrored and all(np.array_equal(flipped_context[i], context[i, :, ::-1]) for i in mirrored)


def test_scale_jitter_only_shrinks_and_keeps_a_tile():
    lab = np.zeros((100, 300, 3), np.float32)
    rng = np.random.default_rng(0)
    sizes = {jittered(lab, rng, 0.25).shape[:2] for _ in range(50)}
    assert all(64 <= h <= 100 and w <= 300 for h, w in sizes) and len(sizes) > 10
    assert jittered(np.zeros((64, 64, 3), np.float32), rng, 0.5).shape == (64, 64, 3)


def test_a_context_dataset_gives_both_inputs(lawful_dataset):
    (lightness, context), ab = next(iter(tile_dataset(lawful_dataset, "train", batch_size=8, crops_per_photo=2,
                                                      context_factor=4, scale_jitter=0.5)))
    assert lightness.shape == context.shape == (8, 64, 64, 1) and ab.shape == (8, 64, 64, 2)
    assert float(np.min(context)) >= -1 and float(np.max(context)) <= 1
