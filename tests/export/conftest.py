"""A tiny trained run (one epoch of the unet on lawful photos, evaluated) and its export through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import pytest

from oppy.export.cli import main as export_main
from oppy.training.cli import main as train_main
from oppy.training.fit import FitOptions, fit
from tests.training import conftest as training_fixtures

lawful_dataset = training_fixtures.lawful_dataset


@pytest.fixture(scope="session")
def trained_run(lawful_dataset, tmp_path_factory) -> Path:
    """A run directory as `oppy-train fit` and `oppy-train evaluate --json RUN/eval.json` leave it."""
    run = tmp_path_factory.mktemp("run")
    fit(lawful_dataset, run, FitOptions(arch="unet", epochs=1, batch_size=16, crops_per_photo=4,
                                        learning_rate=3e-3, jit_compile=False, verbose=0))
    evaluate = ["evaluate", str(run), str(lawful_dataset), "--limit", "2", "--json", str(run / "eval.json")]
    assert train_main(evaluate) == 0
    return run


@pytest.fixture(scope="session")
def network(trained_run) -> keras.Model:
    return keras.models.load_model(trained_run / "model.keras", compile=False)


@pytest.fixture(scope="session")
def exported(trained_run, tmp_path_factory) -> tuple[Path, dict]:
    """`oppy-export RUN OUT.onnx --fp16 --report R`: the float32 model and the report."""
    out = tmp_path_factory.mktemp("export") / "colour.onnx"
    report = out.with_name("report.json")
    assert export_main([str(trained_run), str(out), "--fp16", "--parity-tiles", "16", "--report", str(report)]) == 0
    return out, json.loads(report.read_text())
