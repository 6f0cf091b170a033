"""A folder as an archive: which of its entries are frames, in what order (`--order name|time`), and which camera
is kept (`--camera`); PDS3 products with detached labels counted once. What `render` and `--shards` both list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FrameError, OppyError
from ..frames import display_name
from .facts import ProductInfo, camera_wanted, from_name
from .pds import PDS_SUFFIXES, product_info
from .sources import ImageFolder, list_entries, read_entry
from .stretch import SAMPLE_FRAMES, Levels

log = logging.getLogger(__name__)


@dataclass
class Listing:
    """The entries of an archive to render, in order; those `--camera` left out (name and camera); and how many
    entries have no time, where ordered by time (they follow the timed ones, in name order)."""

    files: list[Path]
    deselected: list[dict[str, str | None]] = field(default_factory=list)
    untimed: int = 0


def _info(path: Path) -> ProductInfo:
    if path.suffix.lower() in PDS_SUFFIXES:
        try:
            return product_info(path)
        except FrameError:  # a bad product: its skip, with the reason, comes when it is rendered
            return from_name(path.name)
    return from_name(path.name)


def list_archive(folder: str | Path, order: str = "name", camera: str | None = None) -> Listing:
    """The entries of `folder` in `order` ("name": natural order; "time": by the label's clock or start time, or
    the clock of a product id in the name, untimed entries after, in name order), keeping only `camera`'s frames
    where given (`facts.camera_wanted`; the others are listed as deselected)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OppyError(f"input folder {str(folder)!r} does not exist")
    files = list_entries(folder)
    if order == "name" and camera is None:
        return Listing(files)
    wanted = camera_wanted(camera) if camera is not None else None
    infos = {path: _info(path) for path in files}
    listing = Listing(files)
    if wanted is not None:
        listing.files = [path for path in files if infos[path].camera in wanted]
        listing.deselected = [{"name": display_name(path.name), "camera": infos[path].camera}
                              for path in files if infos[path].camera not in wanted]
    if order == "time":
        times = {path: infos[path].time() for path in listing.files}
        listing.files.sort(key=lambda p: (times[p] is None, times[p] or 0.0))  # stable: name order among equals
        listing.untimed = sum(time is None for time in times.values())
    return listing


def _readable_frames(paths: Iterable[Path]) -> Iterator[np.ndarray]:
    """The pixels of those of `paths` that are frames, read one at a time."""
    for path in paths:
        try:
            pixels, _ = read_entry(path)
        except FrameError:  # not measured: its skip, with the reason, comes when it is rendered
            continue
        yield pixels


def measure_levels(files: list[Path]) -> Levels | None:
    """`--stretch archive`: the stretch of `SAMPLE_FRAMES` frames spread evenly over `files` (those readable)."""
    picks = sorted({round(i) for i in np.linspace(0, len(files) - 1, min(SAMPLE_FRAMES, len(files)))}) \
        if files else []
    levels = Levels.measure(_readable_frames(files[index] for index in picks))  # one frame in memory at once
    if levels is not None:
        log.info("--stretch archive: values %.4g..%.4g of full scale become black..white (from %d frames)",
                 levels.low, levels.high, len(picks))
    return levels


def open_archive(folder: str | Path, order: str = "name", camera: str | None = None, stretch: str = "none",
                 threads: int = 1, files: list | None = None, levels: Levels | None = None,
                 first_index: int = 0) -> tuple[ImageFolder, Listing]:
    """The folder's frames to render (`files`, where given: those entries in that order, as one chunk of a
    listing whose frames begin at `first_index`), with the stretch measured here (`stretch` "archive") unless
    `levels` are given."""
    listing = Listing([Path(folder) / name for name in files]) if files is not None else \
        list_archive(folder, order, camera)
    if stretch == "archive" and levels is None:
        levels = measure_levels(listing.files)
    return ImageFolder(folder, [path.name for path in listing.files], threads, levels, first_index), listing
