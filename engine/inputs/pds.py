"""PDS3 products (`.IMG` with an attached label, or `.IMG` + `.LBL`) read by the field's own reader, pdr, into
grey frames at the archive's bit depth, with what their labels say.

pdr is an optional extra (`pip install 'oppy-stream[pds]'`), imported only when a product is met; without it a
product is a skip that says so. Samples are mapped by the bit depth the label declares (`SAMPLE_BIT_MASK`, else
`SAMPLE_BITS`), the same mapping for every frame, so that a 12-bit product is not dark and frames do not pump.
A product that cannot be used raises `FrameError` with the reason.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np

from ..errors import FrameError, one_line
from .facts import ProductInfo, from_label, from_name

PDS_SUFFIXES = frozenset({".img", ".lbl"})
PDS_EXTRA = "pip install 'oppy-stream[pds]'"
#: the largest product read: OpenCV's limit for one image, as for every other frame, and at most this many bands
#: and bytes of image data
_MAX_PIXELS, _MAX_BANDS, _MAX_BYTES = 1 << 30, 4096, 1 << 31


def _pdr():
    try:
        import pdr
    except ImportError:
        return None
    return pdr


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _bit_depth(image: np.ndarray, label: dict) -> int:
    """Bits of the samples' values: the mask's set bits, else SAMPLE_BITS, never more than the sample holds (a
    label claiming more is not believed)."""
    width = image.dtype.itemsize * 8
    mask = label.get("SAMPLE_BIT_MASK")
    if isinstance(mask, (int, np.integer)) and 0 < int(mask).bit_length() <= width:
        return int(mask).bit_length()
    bits = label.get("SAMPLE_BITS")
    if isinstance(bits, (int, np.integer)) and 1 <= bits <= width:
        return int(bits)
    return width


def to_grey(image: np.ndarray, label: dict) -> np.ndarray:
    """One band of a product's samples as an HxW uint16 frame (or uint8 for unsigned 8-bit products): integers
    scaled from their bit depth to the full range through a table (values past it clipped, negative ones black),
    floats from their own 0.1st to 99.9th percentile (a float product has no fixed depth).

    raises FrameError: why the samples are not a picture."""
    if image.ndim == 3:
        image = image[0]  # band sequential: the first band
    if image.ndim != 2 or min(image.shape) < 1:
        raise FrameError(f"the image is not a picture (shape {image.shape})")
    if image.dtype.kind in "iu":
        bits = _bit_depth(image, label)
        if image.dtype == np.uint8 and bits == 8:
            return np.ascontiguousarray(image)
        # a signed sample's full width holds values up to 2^(bits-1) - 1; a mask or a narrower depth, up to 2^bits-1
        top = (1 << (bits - 1)) - 1 if image.dtype.kind == "i" and bits == image.dtype.itemsize * 8 else \
            (1 << bits) - 1
        if image.dtype.itemsize <= 2:  # a table of every value the sample type holds: no float copy of the frame
            info = np.iinfo(image.dtype)
            values = np.arange(info.min, info.max + 1, dtype=np.float64)
            table = np.round(np.clip(values * (65535.0 / top), 0, 65535)).astype(np.uint16)
            native = image.astype(image.dtype.newbyteorder("="), copy=False)
            unsigned = native.view(np.uint8 if image.dtype.itemsize == 1 else np.uint16)
            # value - min: for a signed type, the same bits with the sign bit flipped (no wider copy of the frame)
            return table[unsigned ^ np.array(-info.min, unsigned.dtype)] if info.min < 0 else table[unsigned]
        scaled = np.clip(image.astype(np.float32) * np.float32(65535.0 / top), 0, 65535)
        return np.rint(scaled).astype(np.uint16)
    if image.dtype.kind == "f":
        values = image.astype(np.float32)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            raise FrameError("no finite samples in the image")
        low, high = (float(v) for v in np.percentile(finite[:: max(1, finite.size >> 20)], (0.1, 99.9)))
        span = high - low if high > low else 1.0
        values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
        return np.rint(np.clip((values - low) / span, 0, 1) * 65535).astype(np.uint16)
    raise FrameError(f"unsupported sample type {image.dtype}")


#: the SAMPLE_TYPEs of PDS3 (integers and reals of each byte order): any other is a label that cannot be read right
_SAMPLE_TYPE = re.compile(r"((MSB|LSB|PC|SUN|MAC|VAX|VAXG|IEEE|IBM)_)?(UNSIGNED_)?(INTEGER|REAL|COMPLEX)"
                          r"|(MSB|LSB|PC|SUN|MAC|VAX)_UNSIGNED_INTEGER|(UNSIGNED|SIGNED)_INTEGER|FLOAT|N/A")

#: the keywords read from the label's root: what the frame says about itself
_KEYWORDS = ("PRODUCT_ID", "INSTRUMENT_ID", "PLANET_DAY_NUMBER", "START_TIME", "SPACECRAFT_CLOCK_START_COUNT")
#: and from its IMAGE object: the image's size and sample depth
_IMAGE_KEYWORDS = ("LINES", "LINE_SAMPLES", "BANDS", "SAMPLE_BITS", "SAMPLE_BIT_MASK", "SAMPLE_TYPE")


def _label(data) -> dict:
    """The keywords the label holds of `_KEYWORDS` (its root) and of `_IMAGE_KEYWORDS` (its IMAGE object's own:
    never another group's LINES), pdr's warnings about odd labels kept quiet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = {key: data.metadata.get(key) for key in _KEYWORDS}
        block = data.metablock_("IMAGE") or {}
        found.update({key: block.get(key) for key in _IMAGE_KEYWORDS})
    return {key: value for key, value in found.items() if value is not None}


def detached_labels(path: Path) -> list[Path]:
    """Where a detached label of the product `path` may lie, beside it: `X.LBL` (pdr looks there too) and
    `X.IMG.LBL`, in the usual cases."""
    return [label for label in (*(path.with_suffix(suffix) for suffix in (".LBL", ".lbl", ".Lbl")),
                                *(path.with_name(path.name + suffix) for suffix in (".LBL", ".lbl")))
            if label != path]


def _label_to_read(path: Path) -> Path:
    """What pdr is given for the product `path`: the data file itself, whose label pdr finds (attached, or `X.LBL`
    beside it), or its `X.IMG.LBL` label where that is the only detached label there (pdr does not look for it)."""
    if path.suffix.lower() != ".img":
        return path
    names, _ = _listing(path.parent)
    if path.with_suffix(".lbl").name.casefold() in names:
        return path
    label = names.get(path.name.casefold() + ".lbl")
    return path.parent / label if label else path


@functools.lru_cache(maxsize=8)
def _folder_listing(folder: str, modified: int) -> tuple[dict[str, str], frozenset[str]]:
    """(casefolded name -> name, the names that are not regular files) of one folder, listed once per change of
    the folder (`modified`: its mtime), not once per product."""
    names, irregular = {}, set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            names[entry.name.casefold()] = entry.name
            try:
                if not stat.S_ISREG(os.stat(entry.path).st_mode):
                    irregular.add(entry.name)
            except OSError:  # a dangling link or a loop: nothing that could block
                continue
    return names, frozenset(irregular)


def _listing(folder: Path) -> tuple[dict[str, str], frozenset[str]]:
    try:
        modified = os.stat(folder).st_mtime_ns
    except OSError:
        return {}, frozenset()
    return _folder_listing(str(folder), modified)


def _irregular_sibling(path: Path) -> str | None:
    """The name of an entry beside a product that shares its name up to the suffix, in any case (the labels and data
    files pdr may open: NAME.LBL, name.lbl, NAME.IMG.LBL...), and is not a regular file; None where all are."""
    stem = path.name.casefold().rpartition(".")[0] or path.name.casefold()
    _, irregular = _listing(path.parent)
    for name in irregular:
        folded = name.casefold()
        if name != path.name and (folded.startswith(stem + ".") or folded == stem):
            return name
    return None


def _open(path: Path):
    """pdr's lazy view of a product (the label read, the data not yet); raises FrameError: why not."""
    pdr = _pdr()
    if pdr is None:
        raise FrameError(f"a PDS3 product, and reading PDS needs the pds extra: {PDS_EXTRA}")
    try:
        info = os.stat(path)
    except OSError as exc:
        raise FrameError(f"cannot read: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise FrameError("not a regular file")
    odd = _irregular_sibling(path)
    if odd is not None:  # pdr may open it (a label in any case of the name), and a named pipe blocks for ever
        raise FrameError(f"{odd!r} beside it is not a regular file (a named pipe or a device): the reader could "
                         "block on it")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = pdr.read(str(_label_to_read(path)))
    except Exception as exc:  # a hostile file may break the reader anywhere: every failure is a skip
        raise FrameError(f"not a readable PDS3 product ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if "IMAGE" not in data.keys():  # noqa: SIM118 (a pdr Data, not a dict)
        raise FrameError("a PDS3 product without an IMAGE object (not a picture)")
    return data


def _offset(value, record_bytes) -> int:
    """The 0-based byte a pointer's offset names: a record number (1-based, RECORD_BYTES long) or a byte number
    with <BYTES> (1-based); raises FrameError: why it names none."""
    if isinstance(value, dict) and str(value.get("units", "")).upper() == "BYTES":
        value, unit = value.get("value"), "byte"
    else:
        unit = "record"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FrameError(f"a PDS3 label whose ^IMAGE offset is {value!r}")
    if value < 1:
        raise FrameError(f"a PDS3 label whose ^IMAGE points at {unit} {value}: {unit}s count from 1")
    if unit == "byte":
        return int(value) - 1
    if not isinstance(record_bytes, (int, np.integer)) or record_bytes < 1:
        raise FrameError("a PDS3 label whose ^IMAGE counts records but whose RECORD_BYTES is not a positive number")
    return (int(value) - 1) * int(record_bytes)


def _data_file(data, path: Path, needed: int) -> Path:
    """The file the IMAGE object's data is in: the label's own file for an attached label, else the file the
    pointer names, which must be a regular file beside the label (no other folder: a label is untrusted) holding
    the `needed` bytes the label declares from where the pointer says they start (raises FrameError: why not).
    Every pointer form of PDS3: a record or `<BYTES>` offset in the label's file (past the label itself), a file
    name, or a file name with a record or `<BYTES>` offset."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pointer = data.metadata.get("^IMAGE")
        record_bytes = data.metadata.get("RECORD_BYTES")
        label_records = data.metadata.get("LABEL_RECORDS")
    if pointer is None:
        raise FrameError("a PDS3 label without an ^IMAGE pointer")
    label = Path(getattr(data, "labelname", None) or path)
    name, offset = None, None
    if isinstance(pointer, (list, tuple)):
        if not pointer or len(pointer) > 2 or not isinstance(pointer[0], str):
            raise FrameError(f"a PDS3 label whose ^IMAGE pointer is {pointer!r}")
        name, offset = pointer[0], (pointer[1] if len(pointer) == 2 else 1)
    elif isinstance(pointer, str):
        name, offset = pointer, 1
    else:
        offset = pointer
    start = _offset(offset, record_bytes)
    if name is None:
        target = label
    else:
        name = name.strip().strip('"')
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise FrameError(f"its label points at {name!r}, outside the product's folder")
        stem, dot, suffix = name.rpartition(".")
        candidates = [name, name.upper(), name.lower()] + ([f"{stem.lower()}.{suffix.upper()}",
                                                            f"{stem.upper()}.{suffix.lower()}"] if dot else [])
        target = next((label.parent / c for c in candidates if (label.parent / c).exists()), None)
        if target is None:
            raise FrameError(f"its data file {name!r} is missing")
    if not _regular(target) or target.resolve().parent != label.resolve().parent:
        raise FrameError(f"its data file {target.name!r} is not a regular file beside its label")
    label_bytes = (int(label_records) * int(record_bytes)
                   if all(isinstance(v, (int, np.integer)) and v > 0 for v in (label_records, record_bytes)) else 1)
    if os.path.samefile(target, label) and start < label_bytes:
        raise FrameError(f"a PDS3 label whose ^IMAGE points into the label itself (byte {start + 1})")
    size = os.stat(target).st_size
    if size < start + needed:
        raise FrameError(f"the image data is shorter than its label declares ({max(0, size - start)} bytes from "
                         f"byte {start + 1} for {needed})")
    return target


def _not_understood(exc: Exception) -> FrameError:
    return FrameError(f"a PDS3 label that cannot be understood ({type(exc).__name__}: {str(exc)[:200]})")


def product_info(path: Path) -> ProductInfo:
    """What a product's label says (read without its image), filled in from the product id in its name.

    raises FrameError: why the product cannot be read."""
    data = _open(path)
    try:
        return from_label(_label(data)).merged(from_name(path.name))
    except Exception as exc:  # the label is untrusted: a keyword of a strange type is a skip too
        raise _not_understood(exc) from exc


def read_product(path: Path) -> tuple[np.ndarray, ProductInfo]:
    """A product's image as a grey frame (`to_grey`) and what its label says.

    raises FrameError: why the product cannot be used: no pds extra, no IMAGE object, a data part shorter than
    the label declares, a label that lies about the size or points outside the product's folder."""
    data = _open(path)
    try:
        label = _label(data)
        info = from_label(label).merged(from_name(path.name))
    except Exception as exc:  # the label is untrusted: a keyword of a strange type is a skip too
        raise _not_understood(exc) from exc
    lines, samples, bands, bits = (label.get(key, default) for key, default in
                                   (("LINES", None), ("LINE_SAMPLES", None), ("BANDS", 1), ("SAMPLE_BITS", 8)))
    sizes = (lines, samples, bands, bits)
    if not all(isinstance(v, (int, np.integer)) and v >= 1 for v in sizes) or lines * samples > _MAX_PIXELS \
            or bands > _MAX_BANDS or bits > 64 or lines * samples * bands * -(-bits // 8) > _MAX_BYTES:
        raise FrameError(f"a PDS3 label with an impossible image size ({lines} lines x {samples} samples x "
                         f"{bands} bands of {bits} bits)")
    if bits % 8:
        raise FrameError(f"a PDS3 label whose SAMPLE_BITS is {bits}, not a whole number of bytes: its samples cannot "
                         "be read as it says (the bits that carry a value are SAMPLE_BIT_MASK's)")
    sample_type = str(label.get("SAMPLE_TYPE", "")).strip().strip('"').upper()
    if sample_type and not _SAMPLE_TYPE.fullmatch(sample_type):
        raise FrameError(f"a PDS3 label with an unknown SAMPLE_TYPE {one_line(sample_type)!r}")
    _data_file(data, path, lines * samples * bands * -(-bits // 8))  # checked here; pdr reads it below
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image = data["IMAGE"]
    except Exception as exc:
        raise FrameError(f"the image cannot be read ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if not isinstance(image, np.ndarray):  # pdr hands back the label where it cannot load the data
        said = [w for w in caught if not issubclass(w.category, ResourceWarning)]  # Python's, not the reader's
        why = str(said[-1].message) if said else "no data"
        raise FrameError(f"the image cannot be read as its label declares: it is cut off or of a kind not read "
                         f"({why[:200]})")
    grey = to_grey(image, label)
    if image.ndim == 3 and image.shape[0] > 1:
        info = ProductInfo(**{**info.fields(), "bands": int(image.shape[0])})
    return grey, info
