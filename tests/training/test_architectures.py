import numpy as np

from oppy.training.architectures import ARCHITECTURES, build, conv_flops


def test_both_architectures_build_and_map_tiles_to_chroma():
    for name in ARCHITECTURES:
        model = build(name)
        out = np.asarray(model(np.zeros((2, 64, 64, 1), np.float32)))
        assert out.shape == (2, 64, 64, 2)
        assert np.abs(out).max() <= 1  # tanh


def test_seed_is_the_original_network():
    seed = build("seed")
    assert seed.count_params() == 3_892_194
    assert sum(1 for layer in seed.layers if type(layer).__name__ == "Conv2D") == 12


def test_default_needs_at_most_a_quarter_of_the_seeds_flops():
    assert conv_flops(build("unet")) <= conv_flops(build("seed")) / 4
