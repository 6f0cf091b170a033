import cv2
import numpy as np
import pytest

from oppy.engine.contract import TRAINING_CONTRACT as CONTRACT
from oppy.engine.errors import OppyError
from oppy.export.parity import Parity, parity_tiles
from tests.conftest import gradient_frame


def test_tile_sets_cover_the_whole_l_range_and_photo_like_texture():
    sets = parity_tiles(CONTRACT, count=12)
    random, textured = sets["random"], sets["textured"]
    assert random.shape == textured.shape == (12, 64, 64, 1) and random.dtype == np.float32
    low, high = CONTRACT.l_shift, 100 * CONTRACT.l_scale + CONTRACT.l_shift
    assert random[0].max() == low and random[1].min() == high
    assert low <= textured.min() and textured.max() <= high
    assert np.unique(textured.reshape(12, -1), axis=0).shape[0] == 12  # twelve different tiles
    contrast = textured.std(axis=(1, 2, 3)) / CONTRACT.l_scale  # in L*: rover photos give about 9
    assert 5 < contrast.mean() < 20
    means = (textured.mean(axis=(1, 2, 3)) - CONTRACT.l_shift) / CONTRACT.l_scale
    assert means.max() - means.min() > 25  # dark and bright tiles alike


def test_photos_join_the_check_and_unreadable_entries_are_passed_over(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), gradient_frame(96, 128))
    (tmp_path / "notes.txt").write_text("not a photo")
    images = parity_tiles(CONTRACT, images=tmp_path, count=4)["images"]
    assert images.shape == (4, 64, 64, 1)
    (tmp_path / "a.png").unlink()
    with pytest.raises(OppyError, match="no readable image"):
        parity_tiles(CONTRACT, images=tmp_path)


def test_parity_is_judged_on_the_worst_tile_set():
    parity = Parity(1e-4, "CPUExecutionProvider", {"random": 2e-5, "textured": 3e-4}, {"random": 8, "textured": 8})
    assert parity.worst == 3e-4 and not parity.ok
    assert parity.as_dict()["ok"] is False
