"""PDS3 products written by the tests themselves: a label of `KEY = VALUE` lines and big-endian samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_pds3(path: Path, data: np.ndarray, keywords: dict[str, str] | None = None, sample_type: str | None = None,
               bits: int | None = None, mask_bits: int | None = None, detached: str | None = None,
               lines: int | None = None, cut: int = 0, image: bool = True,
               image_keywords: dict[str, str] | None = None, pointer: str | None = None) -> Path:
    """A PDS3 product at `path`: `data` (HxW, or BxHxW band sequential) after an attached label padded to whole
    records, or (`detached`: the data file's name) a label alone with the data beside it. `lines` makes the label
    claim another height; `cut` drops that many bytes off the end; `image=False` declares a TABLE instead.
    `pointer` is the pointer's value as written, with `{record}` (the data's first record, 1-based) and `{byte}`
    (its first byte, 1-based) filled in, e.g. "{byte} <BYTES>"."""
    bands = data.shape[0] if data.ndim == 3 else 1
    height, width = data.shape[-2:]
    sample_type = sample_type or {"u": "MSB_UNSIGNED_INTEGER", "i": "MSB_INTEGER", "f": "IEEE_REAL"}[data.dtype.kind]
    record = width * data.dtype.itemsize
    described = {"LINES": str(lines or height), "LINE_SAMPLES": str(width), "SAMPLE_TYPE": sample_type,
                 "SAMPLE_BITS": str(bits or data.dtype.itemsize * 8),
                 **({"SAMPLE_BIT_MASK": f"2#{'0' * (16 - mask_bits)}{'1' * mask_bits}#"} if mask_bits else {}),
                 "BANDS": str(bands), "BAND_STORAGE_TYPE": "BAND_SEQUENTIAL", **(image_keywords or {})}
    objects = (["OBJECT = IMAGE", *(f"{k} = {v}" for k, v in described.items()), "END_OBJECT = IMAGE"] if image else
               ["OBJECT = TABLE", "ROWS = 1", "COLUMNS = 1", "ROW_BYTES = 8", "INTERCHANGE_FORMAT = BINARY",
                "END_OBJECT = TABLE"])
    pointer_value = pointer
    pointer = "IMAGE" if image else "TABLE"

    def label(label_records: int) -> bytes:
        where = f'"{detached}"' if detached else str(label_records + 1)
        if pointer_value is not None:
            where = pointer_value.format(record=label_records + 1, byte=label_records * record + 1)
        lines_ = ["PDS_VERSION_ID = PDS3", "RECORD_TYPE = FIXED_LENGTH", f"RECORD_BYTES = {record}",
                  f"FILE_RECORDS = {label_records + height * bands}", f"LABEL_RECORDS = {label_records}",
                  f"^{pointer} = {where}", *(f"{k} = {v}" for k, v in (keywords or {}).items()), *objects, "END"]
        return ("\r\n".join(lines_) + "\r\n").encode()

    samples = data.astype(data.dtype.newbyteorder(">")).tobytes()
    if detached:
        path.write_bytes(label(0))
        (path.parent / detached).write_bytes(samples)
        return path
    records = 1
    while len(label(records)) > records * record:
        records += 1
    blob = label(records).ljust(records * record, b" ") + samples
    path.write_bytes(blob[: len(blob) - cut])
    return path


def twelve_bit_frame(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth 12-bit frame (0..4095) in 16-bit samples, as MER's cameras return them."""
    y, x = np.mgrid[0:height, 0:width]
    return np.clip(400 + 3000 * (0.6 * x / width + 0.4 * y / height) + 10 * seed, 0, 4095).astype(np.uint16)
