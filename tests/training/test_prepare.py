import csv
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from oppy.training.prepare import MANIFEST, REJECTED, Thresholds, filter_sheets, prepare, split_of
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


def test_without_a_splits_file_each_mars_day_goes_whole_to_one_split():
    sols = {f"{sol:04d}M{side}00000001101000{i:02d}E01_DRCL.JPG": sol for sol in range(300) for side in "LR"
            for i in range(3)}
    splits = {name: split_of(name) for name in sols}
    for sol in range(300):  # the six photos of a sol share their split
        assert len({split for name, split in splits.items() if sols[name] == sol}) == 1
    val_days = {sols[name] for name, split in splits.items() if split == "val"}
    assert 15 <= len(val_days) <= 45  # about a tenth of 300 days
    assert split_of("1N130000000EFF0300P1500R0M1.JPG") == split_of("1F130050000EFF0300P1500R0M1.JPG")  # MER: a day
    assert {split_of(f"photo{i}.png", 0.5) for i in range(40)} == {"train", "val"}  # no id: by the name itself
    assert {split_of(f"photo{i}.png", 0.0) for i in range(40)} == {"train"}


def test_the_split_is_the_same_on_every_run_and_machine():
    # a fixed hash (SHA-1), not Python's per-process one: a fresh interpreter with another hash seed agrees
    names = [f"scene_{i}.jpg" for i in range(50)]
    here = [split_of(name) for name in names]
    code = f"from oppy.training.prepare import split_of; print([split_of(n) for n in {names!r}])"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "123"}).stdout
    assert str(here) == there.strip() and "val" in here


def test_prepare_makes_a_validation_split_and_a_splits_file_still_wins(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    names = [f"{sol:04d}ML0000000110100031E01_DRCL.png" for sol in range(40)]
    for seed, name in enumerate(names):
        save_rgb(raw / name, lawful_photo(70, 70, seed=seed))
    outcomes = dict(prepare(raw, tmp_path / "by-day", val_fraction=0.25))
    assert set(outcomes.values()) == {"train", "val"}
    assert outcomes == {name: split_of(name, 0.25) for name in names}
    splits = tmp_path / "splits.tsv"
    splits.write_text("file\tsplit\n" + "".join(f"{name}\tval\n" for name in names[:3]))
    outcomes = dict(prepare(raw, tmp_path / "by-file", splits))
    assert [name for name, split in outcomes.items() if split == "val"] == names[:3]
    with pytest.raises(ValueError, match="val-fraction"):
        list(prepare(raw, tmp_path / "bad", val_fraction=1.5))


def test_a_small_folder_of_two_days_or_more_always_gets_a_validation_photo(tmp_path):
    from oppy.training.data import split_files

    for count in (2, 3, 4):
        raw = tmp_path / f"raw{count}"
        raw.mkdir()
        names = [f"{sol:04d}ML0000000110100031E01_DRCL.png" for sol in range(count)]  # one photo a day
        for seed, name in enumerate(names):
            save_rgb(raw / name, lawful_photo(70, 70, seed=seed))
        dataset = tmp_path / f"dataset{count}"
        list(prepare(raw, dataset, val_fraction=0.1))
        val, train = split_files(dataset, "val"), split_files(dataset, "train")
        assert len(val) >= 1 and len(train) >= 1 and len(val) + len(train) == count
        assert {row["split"] for row in table(dataset / MANIFEST).values()} == {"train", "val"}
        manifest = table(dataset / MANIFEST)
        assert [p.stem for p in val] == [name[:-4] for name, row in manifest.items() if row["split"] == "val"]
        list(prepare(raw, dataset, val_fraction=0.1))  # a re-run keeps the split as it is
        assert split_files(dataset, "val") == val


def test_one_day_of_photos_makes_no_validation_split_and_fit_says_what_to_do(tmp_path):
    from oppy.training.data import tile_dataset

    raw = tmp_path / "raw"
    raw.mkdir()
    for seed in range(3):
        save_rgb(raw / f"0042ML00000001101000{seed}1E01_DRCL.png", lawful_photo(70, 70, seed=seed))
    list(prepare(raw, tmp_path / "dataset"))
    with pytest.raises(FileNotFoundError, match=r"another day.*--splits"):
        tile_dataset(tmp_path / "dataset", "val")


def test_new_photos_of_a_day_already_in_val_go_to_val(tmp_path):
    from oppy.training.data import split_files

    raw = tmp_path / "raw"
    raw.mkdir()
    names = [f"{sol:04d}ML0000000110100031E01_DRCL.png" for sol in range(3)]
    for seed, name in enumerate(names):
        save_rgb(raw / name, lawful_photo(70, 70, seed=seed))
    list(prepare(raw, tmp_path / "dataset", val_fraction=0.1))
    val_day = split_files(tmp_path / "dataset", "val")[0].name[:4]
    later = f"{val_day}ML0000000990100031E01_DRCL.png"  # another photo of that day, added later
    save_rgb(raw / later, lawful_photo(70, 70, seed=9))
    assert dict(prepare(raw, tmp_path / "dataset", val_fraction=0.1)) == {later: "val"}
