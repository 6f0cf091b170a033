"""The palette of a prepared dataset: where its training photos put their colours, for the engine's palette guard
(`engine.palette`): `oppy-train fit` records it in run.json, `oppy-export` writes it into the model's metadata."""

from __future__ import annotations

from pathlib import Path

from oppy.engine.palette import Palette, folder_palette


def dataset_palette(dataset_dir: str | Path, split: str = "train") -> Palette:
    """The palette of a prepared dataset's split: its photos' occupied (L*, a*, b*) cells (`engine.palette`)."""
    return folder_palette(Path(dataset_dir) / split)
