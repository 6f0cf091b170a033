"""The packaged default model: present in the installed package, lawful, and colouring Mars as Mars."""

import json

import numpy as np
import onnx
import pytest

from oppy.bench.synth import synth_frames
from oppy.engine import Engine, api
from oppy.engine.contract import KEY_ARCHITECTURE, KEY_METRICS, KEY_TRAINING, ModelContract
from oppy.engine.errors import ModelError
from oppy.engine.lab import rgb_to_lab


def test_packaged_model_carries_the_contract_and_its_provenance():
    path = api.default_model_path()
    assert path.stat().st_size < 8 * 2**20  # a few MB at most: it ships inside the package
    metadata = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    contract = ModelContract.from_metadata(metadata)
    assert (contract.tile_size, contract.input_name, contract.output_name) == (64, "L", "ab")
    assert metadata[KEY_ARCHITECTURE] == "unet-context" and contract.context_factor == 4
    assert json.loads(metadata[KEY_TRAINING])["architecture"] == "unet-context"
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
