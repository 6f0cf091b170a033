"""The model contract and provenance an exported model carries: scaling from the run, summary, metrics, versions.

The keys themselves are defined in `oppy.engine.contract`; this module only fills them from a run directory
(`run.json`, `eval.json`) and the tools that did the export.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from dataclasses import replace
from pathlib import Path

import onnx

from oppy.engine.contract import (
    DEFAULT_OVERLAP,
    KEY_ARCHITECTURE,
    KEY_EXPORTER,
    KEY_METRICS,
    KEY_TRAINING,
    TRAINING_CONTRACT,
    ModelContract,
)
from oppy.engine.errors import ModelError, OppyError
from oppy.engine.palette import Palette

from .network import RUN_SUMMARY

log = logging.getLogger(__name__)

EVALUATION = "eval.json"  # written by `oppy-train evaluate RUN DATASET --json RUN/eval.json`


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}: fix or remove the file, then export again") from exc


def _trained_contract(run: dict | None, where: Path | None) -> ModelContract:
    """The scaling the network was trained with: the run's own record, else the training package's."""
    if run is not None and "contract" in run:
        return ModelContract.from_metadata(run["contract"], source=str(where))
    log.warning("no %s with a contract beside the model: assuming the current training scaling "
                "(L* x %g %+g, ab x %g)", RUN_SUMMARY, TRAINING_CONTRACT.l_scale, TRAINING_CONTRACT.l_shift,
                TRAINING_CONTRACT.ab_scale)
    return TRAINING_CONTRACT


def run_contract(run_dir: Path | None, architecture: str, tile: int,
                 overlap: int = DEFAULT_OVERLAP, scene_size: int | None = None,
                 palette: str | None = None) -> ModelContract:
    """The contract of a trained network: scaling and names from `run_dir/run.json` (the training package's
    `TRAINING_CONTRACT` when there is none), `tile` from the network itself, and as `info` the architecture, the
    training summary (run.json less its contract) and the validation metrics (eval.json), each saying
    "none" with the reason when the run directory lacks it. `scene_size` (the median long side of the training
    photos, px) and `palette` (`oppy.palette`'s text) override what the run recorded."""
    summary_path = run_dir / RUN_SUMMARY if run_dir else None
    run = _read_json(summary_path) if summary_path else None
    base = _trained_contract(run, summary_path)
    if not 0 <= overlap < tile:
        raise OppyError(f"overlap {overlap} px does not fit a {tile} px tile: choose 0 to {tile - 1}")
    if base.tile_size != tile:
        raise ModelError(f"the network takes {tile}x{tile} tiles but was trained under a contract for "
                         f"{base.tile_size}x{base.tile_size}: export the run's own model.keras")
    metrics = _read_json(run_dir / EVALUATION) if run_dir else None
    where = str(run_dir) if run_dir else "the model's folder"
    info = {
        KEY_ARCHITECTURE: (run or {}).get("architecture", architecture),
        KEY_TRAINING: _compact({k: v for k, v in run.items() if k != "contract"} if run else
                               {"none": f"no {RUN_SUMMARY} in {where}"}),
        KEY_METRICS: _compact(metrics if metrics else
                              {"none": f"no {EVALUATION} in {where}: write it with `oppy-train evaluate RUN "
                                       f"DATASET --json RUN/{EVALUATION}` before exporting"}),
    }
    scene_size = scene_size if scene_size is not None else base.scene_size
    if scene_size is None:
        log.warning("no scene size in %s: the engine's auto chroma scale will colourise at full resolution; pass "
                    "--scene-size PX (the median long side of the training photos)", summary_path or "the run")
    if palette is None and base.palette is None:
        log.warning("no palette in %s: the engine's palette guard will not act on this model; pass --palette "
                    "DATASET (the prepared dataset it was trained on)", summary_path or "the run")
    contract = ModelContract(base.input_name, base.output_name, tile, base.l_scale, base.l_shift, base.ab_scale,
                             overlap, scene_size, base.context_input, base.context_factor,
                             Palette.from_metadata(palette) if palette is not None else base.palette, info)
    return ModelContract.from_metadata(contract.to_metadata(), source="the exported model")  # checks the ranges


def exporter_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of the tools an export passes through (and of the `extra` packages); onnxruntime checked it."""
    import onnxruntime

    versions = {}
    for package in ("oppy-stream", "tensorflow", "keras", "tf2onnx", "onnx", *extra):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    versions["onnxruntime"] = onnxruntime.__version__
    return versions


def with_exporter(contract: ModelContract, exporter: dict) -> ModelContract:
    """`contract` whose exporter record (JSON under `oppy.exporter`) is `exporter`."""
    return replace(contract, info={**contract.info, KEY_EXPORTER: _compact(exporter)})


def stamp(model: onnx.ModelProto, contract: ModelContract) -> onnx.ModelProto:
    """Replace the model's `metadata_props` with the contract's entries; returns the same model."""
    del model.metadata_props[:]
    for key, value in contract.to_metadata().items():
        model.metadata_props.add(key=key, value=value)
    return model

