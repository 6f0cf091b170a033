import csv

import cv2
import numpy as np

from oppy.training.prepare import MANIFEST, REJECTED, Thresholds, filter_sheets, prepare
from tests.training.conftest import lawful_photo, save_rgb


def table(path):
    with open(path, newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


def test_prepare_rejects_each_kind_of_bad_file_and_keeps_good_ones(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "dataset"
    raw.mkdir()
    save_rgb(raw / "good.png", lawful_photo(100, 120, seed=1))
    save_rgb(raw / "val_good.jpg", lawful_photo(90, 90, seed=2))
    save_rgb(raw / "huge.png", lawful_photo(1500, 1200, seed=3))
    (raw / "empty.jpg").write_bytes(b"")
    _, jpeg = cv2.imencode(".jpg", lawful_photo(128, 128, seed=4))
    (raw / "truncated.jpg").write_bytes(jpeg.tobytes()[: len(jpeg) // 2])
    (raw / "text.jpg").write_text("this is not a photo")
    grey = cv2.cvtColor(lawful_photo(100, 100, seed=5), cv2.COLOR_RGB2GRAY)
    save_rgb(raw / "grey_as_rgb.png", np.dstack([grey] * 3))
    save_rgb(raw / "blurry.png", cv2.GaussianBlur(lawful_photo(100, 100, seed=6), (0, 0), 6))
    save_rgb(raw / "tiny.png", lawful_photo(40, 50, seed=7))
    (raw / "notes.txt").write_text("ignored: not an image suffix")
    splits = tmp_path / "splits.tsv"
    splits.write_text("file\tsplit\tsol\nval_good.jpg\tval\t1\n")

    outcomes = dict(prepare(raw, out, splits, Thresholds(max_side=1024)))
    assert outcomes == {
        "blurry.png": "blurry", "empty.jpg": "empty file", "good.png": "train", "grey_as_rgb.png": "greyscale",
        "huge.png": "train", "text.jpg": "not an image", "tiny.png": "too small (50x40)",
        "truncated.jpg": "truncated", "val_good.jpg": "val",
    }
    assert cv2.imread(str(out / "train" / "good.png")).shape == (100, 120, 3)  # native size, never upscaled
    assert cv2.imread(str(out / "train" / "huge.png")).shape == (1024, 819, 3)
    assert (out / "val" / "val_good.png").exists()
    kept, rejected = table(out / MANIFEST), table(out / REJECTED)
    assert set(kept) == {"good.png", "huge.png", "val_good.jpg"} and kept["val_good.jpg"]["split"] == "val"
    assert float(rejected["grey_as_rgb.png"]["chroma"]) < 1 and float(kept["good.png"]["chroma"]) > 10
    assert list(prepare(raw, out, splits)) == []  # a re-run skips what is done

    sheets = filter_sheets(raw, out, tmp_path / "sheets")
    assert {p.name for p in sheets} >= {"rejected-blurry.png", "rejected-greyscale.png", "kept-least-sharp.png"}
