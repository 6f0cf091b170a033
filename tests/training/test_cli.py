import json

from oppy.training.cli import main
from tests.training.conftest import lawful_photo, save_rgb


def test_prepare_fit_evaluate_from_the_shell(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(6):
        save_rgb(raw / f"p{i}.png", lawful_photo(80, 100, seed=i))
    (raw / "broken.jpg").write_bytes(b"\xff\xd8 nothing")
    splits = tmp_path / "splits.tsv"
    splits.write_text("file\tsplit\tsol\np4.png\tval\t2\np5.png\tval\t2\n")
    dataset, run = tmp_path / "dataset", tmp_path / "run"

    assert main(["prepare", str(raw), str(dataset), "--splits", str(splits), "--sheets", str(tmp_path / "s")]) == 0
    prepared = json.loads(capsys.readouterr().out)
    assert prepared["this_run"] == {"train": 4, "val": 2, "truncated": 1}

    assert main(["fit", str(dataset), "--out", str(run), "--epochs", "1", "--crops-per-photo", "2",
                 "--batch-size", "8", "--no-jit", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs_run"] == 1

    assert main(["evaluate", str(run), str(dataset), "--json", str(tmp_path / "eval.json")]) == 0
    table = capsys.readouterr().out
    assert "| lightness |" in table and "| model |" in table
    result = json.loads((tmp_path / "eval.json").read_text())
    assert set(result["methods"]) == {"model", "constant", "lightness", "grey"} and result["photos"] == 2


def test_missing_dataset_is_one_error_line(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nope"), "--out", str(tmp_path / "run"), "-q"]) == 2
    assert "oppy-train prepare" in capsys.readouterr().err
