import numpy as np

from oppy.training.architectures import ARCHITECTURES, build, conv_flops, uses_context
from oppy.training.cli import ARCHITECTURE_NAMES


def test_every_architecture_builds_and_maps_tiles_to_chroma():
    assert set(ARCHITECTURE_NAMES) == set(ARCHITECTURES)  # what --arch offers is what the registry builds
    tiles = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 1)).astype(np.float32)
    for name in ARCHITECTURES:
        model = build(name)
        out = model([tiles, tiles] if uses_context(name) else tiles)
        ab = np.asarray(out["ab"] if isinstance(out, dict) else out)
        assert ab.shape == (2, 64, 64, 2)
        assert np.abs(ab).max() <= 1  # tanh, or an annealed mean of bins within [-64, 64] / 128


def test_a_context_input_changes_the_answer():
    model = build("unet-context")
    tiles = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 1)).astype(np.float32)
    assert np.abs(np.asarray(model([tiles, tiles])) - np.asarray(model([tiles, -tiles]))).max() > 1e-4


def test_seed_is_the_original_network():
    seed = build("seed")
    assert seed.count_params() == 3_892_194
    assert sum(1 for layer in seed.layers if type(layer).__name__ == "Conv2D") == 12


def test_default_needs_at_most_a_quarter_of_the_seeds_flops():
    assert conv_flops(build("unet")) <= conv_flops(build("seed")) / 4
