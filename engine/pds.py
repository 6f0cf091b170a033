"""PDS3 products (`.IMG` with an attached label, or `.IMG` + `.LBL`) read by the field's own reader, pdr, into
grey frames at the archive's bit depth, with what their labels say.

pdr is an optional extra (`pip install 'oppy-stream[pds]'`), imported only when a product is met; without it a
product is a skip that says so. Samples are mapped by the bit depth the label declares (`SAMPLE_BIT_MASK`, else
`SAMPLE_BITS`), the same mapping for every frame, so that a 12-bit product is not dark and frames do not pump.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np

from .products import ProductInfo, from_label, from_name

PDS_SUFFIXES = frozenset({".img", ".lbl"})
PDS_EXTRA = "pip install 'oppy-stream[pds]'"
#: the largest product read: OpenCV's limit for one image, as for every other frame
_MAX_PIXELS = 1 << 30


def _pdr():
    try:
        import pdr
    except ImportError:
        return None
    return pdr


def _bit_depth(image: np.ndarray, label: dict) -> int | None:
    """Bits of the samples' values: the mask's set bits, else SAMPLE_BITS (integers only)."""
    mask = label.get("SAMPLE_BIT_MASK")
    if isinstance(mask, (int, np.integer)) and mask > 0:
        return int(mask).bit_length()
    bits = label.get("SAMPLE_BITS")
    if isinstance(bits, (int, np.integer)) and 1 <= bits <= 32:
        return int(bits)
    return image.dtype.itemsize * 8


def to_grey(image: np.ndarray, label: dict) -> np.ndarray | str:
    """One band of a product's samples as an HxW uint16 frame (or uint8 for 8-bit products): integers scaled from
    their bit depth to the full range (values past it clipped), floats from their own 0.1st to 99.9th percentile
    (a float product has no fixed depth); or why it cannot be used."""
    if image.ndim == 3:
        image = image[0]  # band sequential: the first band
    if image.ndim != 2 or min(image.shape) < 1:
        return f"the image is not a picture (shape {image.shape})"
    if image.dtype.kind in "iu":
        bits = _bit_depth(image, label)
        if bits == 8 and image.dtype.itemsize == 1:
            return np.ascontiguousarray(image, np.uint8)
        top = float((1 << bits) - 1)
        scaled = np.clip(image.astype(np.float64) * (65535.0 / top), 0, 65535)
        return np.round(scaled).astype(np.uint16)
    if image.dtype.kind == "f":
        finite = image[np.isfinite(image)]
        if finite.size == 0:
            return "no finite samples in the image"
        low, high = np.percentile(finite, (0.1, 99.9))
        span = high - low if high > low else 1.0
        values = np.nan_to_num(image.astype(np.float64), nan=low, posinf=high, neginf=low)
        return np.round(np.clip((values - low) / span, 0, 1) * 65535).astype(np.uint16)
    return f"unsupported sample type {image.dtype}"


#: the label keywords read: the image's size and sample depth, and what the frame says about itself
_KEYWORDS = ("LINES", "LINE_SAMPLES", "BANDS", "SAMPLE_BITS", "SAMPLE_BIT_MASK", "PRODUCT_ID", "INSTRUMENT_ID",
             "PLANET_DAY_NUMBER", "START_TIME", "SPACECRAFT_CLOCK_START_COUNT")


def _label(data) -> dict:
    """The keywords of `_KEYWORDS` the label holds (the first of each, the IMAGE object's included)."""
    found = {key: data.metaget(key) for key in _KEYWORDS}
    return {key: value for key, value in found.items() if value is not None}


def _open(path: Path):
    """pdr's lazy view of a product (the label read, the data not yet), or why not."""
    pdr = _pdr()
    if pdr is None:
        return f"a PDS3 product, and reading PDS needs the pds extra: {PDS_EXTRA}"
    try:
        info = os.stat(path)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = pdr.read(str(path))
    except Exception as exc:  # a hostile file may break the reader anywhere: every failure is a skip
        return f"not a readable PDS3 product ({type(exc).__name__}: {str(exc)[:200]})"
    if "IMAGE" not in data.keys():  # noqa: SIM118 (a pdr Data, not a dict)
        return "a PDS3 product without an IMAGE object (not a picture)"
    return data


def product_info(path: Path) -> ProductInfo | str:
    """What a product's label says (read without its image), filled in from the product id in its name."""
    data = _open(path)
    if isinstance(data, str):
        return data
    try:
        return from_label(_label(data)).merged(from_name(path.name))
    except Exception as exc:  # the label is untrusted: a keyword of a strange type is a skip too
        return f"a PDS3 label that cannot be understood ({type(exc).__name__}: {str(exc)[:200]})"


def read_product(path: Path) -> tuple[np.ndarray, ProductInfo] | str:
    """A product's image as a grey frame (`to_grey`) and what its label says, or why it cannot be used: no pds
    extra, no IMAGE object, a data part shorter than the label declares, a label that lies about the size."""
    data = _open(path)
    if isinstance(data, str):
        return data
    label = _label(data)
    lines, samples, bands = (label.get(key, 1) for key in ("LINES", "LINE_SAMPLES", "BANDS"))
    if not all(isinstance(v, (int, np.integer)) and v >= 1 for v in (lines, samples, bands)) or \
            lines * samples > _MAX_PIXELS or bands > 4096:
        return f"a PDS3 label with an impossible image size ({lines} lines x {samples} samples x {bands} bands)"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image = data["IMAGE"]
    except Exception as exc:
        return f"the image cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
    if not isinstance(image, np.ndarray):  # pdr hands back the label where it cannot load the data
        why = str(caught[-1].message) if caught else "no data"
        return f"the image data is shorter than its label declares, or cut off ({why[:200]})"
    grey = to_grey(image, label)
    if isinstance(grey, str):
        return grey
    info = from_label(label).merged(from_name(path.name))
    if image.ndim == 3 and image.shape[0] > 1:
        info = ProductInfo(**{**info.fields(), "bands": int(image.shape[0])})
    return grey, info
