import pytest

from oppy.engine.contract import KEY_AB_SCALE, KEY_CONTRACT, KEY_TILE_SIZE, REQUIRED_KEYS, ModelContract
from oppy.engine.errors import ModelError

CONTRACT = ModelContract("L", "ab", 64, l_scale=0.01, l_shift=0.0, ab_scale=128.0, overlap=12,
                         info={"oppy.architecture": "unet"})


def test_metadata_round_trip():
    assert ModelContract.from_metadata(CONTRACT.to_metadata()) == CONTRACT
    with_scene = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0, scene_size=256)
    assert with_scene.to_metadata()["oppy.scene_size"] == "256"
    assert ModelContract.from_metadata(with_scene.to_metadata()) == with_scene
    assert "oppy.scene_size" not in CONTRACT.to_metadata() and CONTRACT.scene_size is None


def test_every_missing_key_is_named():
    metadata = CONTRACT.to_metadata()
    del metadata[KEY_AB_SCALE], metadata[KEY_TILE_SIZE]
    with pytest.raises(ModelError, match=f"{KEY_TILE_SIZE}, {KEY_AB_SCALE}"):
        ModelContract.from_metadata(metadata)
    with pytest.raises(ModelError, match="oppy-export"):
        ModelContract.from_metadata({})
    assert len(REQUIRED_KEYS) == 7


@pytest.mark.parametrize(("key", "value", "message"), [
    (KEY_CONTRACT, "99", "contract version"),
    (KEY_TILE_SIZE, "sixty-four", "malformed"),
    (KEY_TILE_SIZE, "4", "8 to 1024 px"),
    (KEY_TILE_SIZE, "1000000", "8 to 1024 px"),
    ("oppy.l_scale", "inf", "oppy.l_scale = inf"),
    ("oppy.l_scale", "0", "not 0"),
    ("oppy.l_shift", "nan", "oppy.l_shift = nan"),
    ("oppy.l_shift", "-1e300", "magnitude at most"),
    (KEY_AB_SCALE, "1e30", r"oppy.ab_scale = 1e\+30"),
    (KEY_AB_SCALE, "-inf", "finite"),
    ("oppy.overlap", "64", "overlap"),
    ("oppy.scene_size", "32", "scene size of 32 px"),
    ("oppy.scene_size", "100000", "scene size"),
    ("oppy.scene_size", "nan", "malformed"),
    ("oppy.scene_size", "256.5", "malformed"),
])
def test_bad_values_are_refused(key, value, message):
    metadata = {**CONTRACT.to_metadata(), key: value}
    with pytest.raises(ModelError, match=message):
        ModelContract.from_metadata(metadata)
