import cv2
import numpy as np
import pytest

from oppy.training.cli import main
from oppy.training.sheets import frames_sheet, spread, validation_sheet
from tests.conftest import affine_model, gradient_frame, write_image


def test_spread_reaches_both_ends_without_repeats():
    assert spread(list(range(10)), 4) == [0, 3, 6, 9]
    assert spread([1, 2], 5) == [1, 2]
    assert spread(list(range(7)), 1) == [0]


def test_validation_sheet_has_a_row_per_photo_and_a_column_per_model(lawful_dataset, tmp_path):
    red = affine_model(tmp_path / "red.onnx", offset=(60 / 128, 40 / 128))
    grey = affine_model(tmp_path / "grey.onnx")
    sheet = validation_sheet(lawful_dataset, {"red": red, "grey": grey}, count=3, cell=64)
    assert sheet.shape == (3 * (64 + 18), 4 * 64, 3)
    first_row = sheet[:64]
    red_cell, grey_cell = first_row[:, 64:128].astype(int), first_row[:, 128:192].astype(int)
    assert (red_cell[..., 0] - red_cell[..., 2]).mean() > 30  # the red model's column is red
    assert np.abs(grey_cell[..., 0] - grey_cell[..., 2]).mean() < 3  # the grey model's is not


def test_frames_sheet_pairs_frames_before_and_after(tmp_path):
    folder = tmp_path / "grey"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"sol{i}.png", gradient_frame(96, 128, seed=i))
    (folder / "notes.txt").write_text("not a frame")
    model = affine_model(tmp_path / "red.onnx", offset=(60 / 128, 40 / 128))
    sheet = frames_sheet(folder, model, count=10, pairs_per_row=2, cell=64)
    assert sheet.shape == (2 * (64 + 18), 4 * 64, 3)  # three frames -> three pairs -> two rows
    before, after = sheet[:64, :64].astype(int), sheet[:64, 64:128].astype(int)
    assert np.abs(before[..., 0] - before[..., 2]).max() == 0
    assert (after[..., 0] - after[..., 2]).mean() > 30


def test_frames_sheet_sets_chroma_scales_side_by_side_and_crops_at_full_resolution(tmp_path):
    folder = tmp_path / "grey"
    folder.mkdir()
    write_image(folder / "sol1.png", gradient_frame(256, 256))
    model = affine_model(tmp_path / "red.onnx", offset=(60 / 128, 40 / 128))
    out = tmp_path / "sheet.png"
    assert main(["sheet", "frames", str(folder), str(out), "--model", str(model), "--chroma-scales", "1,0.25",
                 "--crop", "32", "--cell", "64"]) == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape == (64 + 18, 2 * 3 * 64, 3)  # one frame: grey and two scales, room for two in a row
    grey = sheet[:64, :64].astype(int)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() == 0 and grey.std() < 5  # 32 px of a gentle gradient, enlarged
    with pytest.raises(SystemExit) as usage:
        main(["sheet", "frames", str(folder), str(out), "--model", str(model), "--chroma-scales", "0"])
    assert usage.value.code == 2


def test_sheet_command_writes_png(lawful_dataset, tmp_path):
    model = affine_model(tmp_path / "red.onnx", offset=(60 / 128, 40 / 128))
    out = tmp_path / "sheets" / "val.png"
    assert main(["sheet", "val", str(lawful_dataset), str(out), "--model", f"red={model}", "--count", "2"]) == 0
    assert cv2.imread(str(out)).shape == (2 * (160 + 18), 3 * 160, 3)


def test_sheet_command_needs_a_model_for_val(lawful_dataset, tmp_path, capsys):
    assert main(["sheet", "val", str(lawful_dataset), str(tmp_path / "x.png")]) == 2
    assert "--model" in capsys.readouterr().err


def test_frames_sheet_of_a_missing_folder_is_one_error(tmp_path, capsys):
    model = affine_model(tmp_path / "m.onnx")
    assert main(["sheet", "frames", str(tmp_path / "absent"), str(tmp_path / "x.png"), "--model", str(model)]) == 2
    assert "does not exist" in capsys.readouterr().err
