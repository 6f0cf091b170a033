"""The robustness measure: perturbed validation photos, blotches against the truth, real grey frames by hue."""

import numpy as np
import pytest

from oppy.bench.cli import main
from oppy.bench.robustness import PERTURBATIONS, grey_frames_hues, perturbed_quality
from oppy.engine.kernels.lab import rgb_to_lab
from tests.conftest import affine_model, gradient_frame, write_image
from tests.training import conftest as training_fixtures
from tests.training.conftest import chroma_of, lawful_photo

lawful_dataset = training_fixtures.lawful_dataset


def lawful(lightness):
    """The synthetic world's own colour law: the perfect method on its photos as they are."""
    return np.stack(chroma_of(lightness)).astype(np.float32)


def painter(a, b):
    return lambda lightness: np.stack([np.full_like(lightness, a), np.full_like(lightness, b)])


def test_each_perturbation_gives_an_input_and_its_truth():
    rgb = lawful_photo(48, 64, seed=5)
    lab = rgb_to_lab(rgb)
    rng = np.random.default_rng(0)
    for name, perturb in PERTURBATIONS.items():
        if perturb is None:
            continue
        lightness, truth = perturb(rgb, lab, rng)
        assert lightness.shape == lab.shape[:2] and truth.shape == lab.shape, name
    darker, truth = PERTURBATIONS["exposure x0.2"](rgb, lab, rng)
    assert darker.mean() < lab[..., 0].mean() - 15 and np.array_equal(darker, truth[..., 0])
    _, truth = PERTURBATIONS["gamma 1.8"](rgb, lab, rng)
    assert np.abs(truth[..., 1:] - lab[..., 1:]).mean() < 1.5  # a*, b* kept (up to the 8-bit view)
    noisy, truth = PERTURBATIONS["noise 6"](rgb, lab, rng)
    assert np.array_equal(truth, lab) and not np.array_equal(noisy, lab[..., 0])


def test_perturbed_quality_scores_each_method_and_counts_the_blotches_it_invents(lawful_dataset):
    methods = {"law": lawful, "blue": painter(5.0, -40.0), "ochre": painter(10.0, 25.0)}
    result = perturbed_quality(methods, lawful_dataset, limit=3)
    assert result["photos"] == 3
    rows = {row["method"]: row for row in result["rows"]}
    assert rows["law"]["as is"]["delta_e00"] < 1.0 and rows["law"]["as is"]["ratio"] == 1.0
    assert rows["law"]["as is"]["blotch_rate"] == 0.0
    assert rows["law"]["gamma 1.8"]["ratio"] > 2  # the law follows L*, which the curve moved; the truth did not
    for name in PERTURBATIONS:
        assert rows["blue"][name]["blotch_rate"] == 1.0 and rows["ochre"][name]["blotch_rate"] == 0.0
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturbed_quality(methods, lawful_dataset, perturbations=("as is", "sepia"))


def test_real_grey_frames_are_counted_blotched_by_hue(tmp_path):
    folder = tmp_path / "grey"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"{i}.png", gradient_frame(80, 96, seed=i))
    blue = affine_model(tmp_path / "blue.onnx", (0.0, 0.0), (0.05, -0.35))
    ochre = affine_model(tmp_path / "ochre.onnx", (0.0, 0.0), (0.1, 0.2))
    rows = {row["method"]: row for row in grey_frames_hues({"blue": blue, "ochre": ochre}, folder)["rows"]}
    assert rows["blue"]["blotched_frames"] == 3 and rows["blue"]["hue_shares"]["blue"] > 0.9
    assert rows["ochre"]["blotched_frames"] == 0 and rows["ochre"]["hue_shares"]["warm"] > 0.9


def test_oppy_bench_robustness_prints_a_table_and_refuses_an_unknown_perturbation(lawful_dataset, tmp_path, capsys):
    model = affine_model(tmp_path / "ochre.onnx", (0.0, 0.0), (0.1, 0.2))
    assert main(["--json", str(tmp_path / "r.json"), "robustness", str(lawful_dataset), "--model", f"ochre={model}",
                 "--limit", "2", "--perturb", "jpeg 30", "--flicker-photos", "1"]) == 0
    out = capsys.readouterr().out
    assert "| ochre |" in out and "jpeg 30" in out and "chroma from lightness" in out
    assert main(["robustness", str(lawful_dataset), "--model", str(model), "--perturb", "sepia"]) == 2
    assert "unknown perturbation" in capsys.readouterr().err
    assert main(["robustness"]) == 2
    capsys.readouterr()
    assert main(["robustness", str(lawful_dataset), "--model", str(model), "--limit", "1", "--perturb", "flat",
                 "--flicker-photos", "0"]) == 0  # no pans: no flicker column
    out = capsys.readouterr().out
    assert "| flat |" in out and "flicker" not in out
    assert main(["robustness", str(lawful_dataset), "--model", str(model), "--flicker-photos", "-1"]) == 2
    assert "--flicker-photos must be 0" in capsys.readouterr().err
