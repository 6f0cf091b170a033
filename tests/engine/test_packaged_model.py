"""The packaged default model: present in the installed package, lawful, and colouring Mars as Mars."""

import json

import numpy as np
import onnx
import pytest

from oppy.bench.synth import synth_frames
from oppy.engine import Engine, api
from oppy.engine.contract import KEY_ARCHITECTURE, KEY_METRICS, KEY_TRAINING, ModelContract
from oppy.engine.errors import ModelError
from oppy.engine.kernels.lab import rgb_to_lab
from oppy.training.metrics import BLOTCH_SHARE, invented_hue_share


def test_packaged_model_carries_the_contract_and_its_provenance():
    path = api.default_model_path()
    assert path.stat().st_size < 8 * 2**20  # a few MB at most: it ships inside the package
    metadata = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    contract = ModelContract.from_metadata(metadata)
    assert (contract.tile_size, contract.input_name, contract.output_name) == (64, "L", "ab")
    assert metadata[KEY_ARCHITECTURE] == "unet-context" and contract.context_factor == 4
    training = json.loads(metadata[KEY_TRAINING])
    assert training["architecture"] == "unet-context" and training["options"]["aug_chance"] > 0  # augmented
    assert "model" in json.loads(metadata[KEY_METRICS])["methods"]


def test_packaged_model_colours_a_synthetic_mars_frame_in_mars_tones():
    (_, frame), = synth_frames(1, 256, 256, seed=3)
    with Engine(provider="cpu") as default:
        rgb = default.colorize(frame)
    lab = rgb_to_lab(rgb)
    a, b = float(lab[..., 1].mean()), float(lab[..., 2].mean())
    hue = np.degrees(np.arctan2(b, a))
    assert np.hypot(a, b) > 5, f"mean chroma {np.hypot(a, b):.1f}: grey"
    assert 20 < hue < 90, f"mean hue {hue:.0f} degrees is outside red-orange-brown"


def test_without_a_packaged_model_the_error_names_the_option(monkeypatch, tmp_path):
    monkeypatch.setattr(api, "DEFAULT_MODEL", tmp_path / "absent.onnx")
    with pytest.raises(ModelError, match="--model"):
        Engine()


#: an archive's frames in every light: exposures in linear light, tone curves and a dim, flat stretch (8-bit grey)
LIGHTS = {
    "as published": lambda grey: grey,
    "darker by 1.2 stops": lambda grey: grey * 0.45,
    "darker by 2.3 stops": lambda grey: grey * 0.2,
    "gamma 1.8": lambda grey: 255 * (grey / 255) ** 1.8,
    "flat": lambda grey: grey * 0.5 + 40,
    "dim and flat": lambda grey: grey * 0.3 + 20,
}


@pytest.mark.parametrize("light", LIGHTS)
@pytest.mark.slow
def test_packaged_model_paints_no_blue_or_green_blotches_in_any_light(light):
    frames = [frame for _, frame in synth_frames(2, 512, 512, seed=5, pan=40)]
    with Engine(provider="cpu") as default:
        for frame in frames:
            grey = np.clip(np.round(LIGHTS[light](frame.astype(np.float32))), 0, 255).astype(np.uint8)
            share = invented_hue_share(rgb_to_lab(default.colorize(grey)))
            assert share <= BLOTCH_SHARE, f"{share:.1%} of the pixels blue or green"
