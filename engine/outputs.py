"""Where outputs are written: the one output-path policy, and the one write-then-rename every file goes through.

A file is written under a hidden temporary name beside its target, unique to the process and the write, so that
two renders to one output never share it, and moved onto the target only when whole: a crash leaves the old
file or the new one, never half of one.
"""

from __future__ import annotations

import errno
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from .errors import OppyError

STDOUT = "-"
Outcome = Literal["complete", "interrupted", "failed"]


def output_error(where: str, exc: OSError, frames: int | None) -> OppyError:
    """An `OppyError` for a failed write (after `frames` frames, where frames are written), saying what to do
    about the usual causes."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        fix = "no space left on the device: free some space or write the output elsewhere"
    elif code == errno.EPIPE:
        fix = "the reader closed the pipe"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = f"{exc.strerror or exc}: choose an output you may write to"
    else:
        fix = str(exc.strerror or exc)
    after = f" after {frames} frames" if frames is not None else ""
    return OppyError(f"writing {where} failed{after}: {fix}")


def _same_or_inside(path: Path, other: Path) -> bool:
    """Whether `path` is `other`, or lies inside the folder `other` (links resolved)."""
    path, other = path.resolve(), other.resolve()
    return path == other or other in path.parents


def check_output(path: str | Path, overwrite: bool, source: str | Path | None = None, folder: bool = False,
                 report: str | Path | None = None, model: str | Path | None = None,
                 sheet: str | Path | None = None) -> None:
    """The output-path policy, before any work: refuse an output that is the input or lies inside an input folder
    (even with `overwrite`), an existing output unless told to overwrite it, a video named like a file where a
    folder is (`folder`: the output is a folder of images), a folder that does not exist or may not be written,
    binary output to a terminal, and a `report` path that is the output or the input, a folder, or in a folder
    that does not exist; the same of a contact `sheet`, which may not be the report either. A folder of frames
    replaces the whole folder: one that holds the input or the `model` is refused too."""
    if report is not None:
        check_report(report, path, source)
    if sheet is not None:
        check_report(sheet, path, source, "--sheet")
        if Path(sheet).exists() and not overwrite:
            raise OppyError(f"--sheet {str(sheet)!r} already exists: pass --overwrite (overwrite=True) to replace it")
        if report is not None and Path(sheet).absolute() == Path(report).absolute():
            raise OppyError(f"--sheet and --report are both {str(sheet)!r}: give each a file of its own")
    if str(path) == STDOUT:
        if sys.stdout is None or sys.stdout.isatty():
            raise OppyError("OUTPUT - writes video to stdout, which is a terminal here: redirect it to a file or "
                            "pipe it into another program")
        return
    path = Path(path).absolute()
    if not path.name:
        raise OppyError(f"output {str(path)!r} is the root of the file system: name a folder or a file in it")
    if source is not None and str(source) != STDOUT and _same_or_inside(path, Path(source)):
        raise OppyError(f"output {str(path)!r} is the input or lies inside it: it would destroy what is being "
                        "read; write the output elsewhere")
    for kept, what in ((source, "the input"), (model, "the model")):
        if folder and kept is not None and str(kept) != STDOUT and _same_or_inside(Path(kept), path):
            raise OppyError(f"output folder {str(path)!r} holds {what}, and a render replaces the whole folder: "
                            "write the frames to a folder of their own")
    if path.is_dir() and not folder:
        raise OppyError(f"output {str(path)!r} is a folder: remove it or name another file for the video")
    if path.exists() and not path.is_dir() and folder and not overwrite:
        raise OppyError(f"output {str(path)!r} is a file where a folder of frames would go: pass --overwrite "
                        "(overwrite=True) to replace it")
    if path.exists() and not overwrite and not (path.is_dir() and not any(path.iterdir())):
        raise OppyError(f"output {str(path)!r} already exists: pass --overwrite (overwrite=True) to replace it")
    parent = path.parent
    if not parent.exists():
        raise OppyError(f"cannot write {str(path)!r}: folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise OppyError(f"cannot write {str(path)!r}: {str(parent)!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OppyError(f"cannot write {str(path)!r}: folder {str(parent)!r} is not writable: choose an output "
                        "folder you may write to")


def check_report(report: str | Path, output: str | Path, source: str | Path | None = None,
                 flag: str = "--report") -> None:
    """Refuse a path for a file written beside the output (the report; a contact sheet: `flag`) that would replace
    the output or the input, that is a folder, or whose folder does not exist (found before the render, not after
    it)."""
    report = Path(report)
    example = "sheet.png" if flag == "--sheet" else "report.json"
    for other, what in ((output, "the output"), (source, "the input")):
        if other is not None and str(other) != STDOUT and _same_or_inside(report, Path(other)):
            raise OppyError(f"{flag} {str(report)!r} is {what} or lies inside it: give it a path of its own")
    if report.is_dir():
        raise OppyError(f"{flag} {str(report)!r} is a folder: give a file name, e.g. {str(report / example)!r}")
    if not report.parent.is_dir():
        raise OppyError(f"{flag} {str(report)!r}: folder {str(report.parent)!r} does not exist")
    if not os.access(report.parent, os.W_OK | os.X_OK):
        raise OppyError(f"{flag} {str(report)!r}: folder {str(report.parent)!r} is not writable")


def temporary_name(target: Path) -> Path:
    """A hidden name beside `target` for writing it, unique to this process and this write."""
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")


def leftover_temporaries(target: Path) -> Iterator[Path]:
    """Temporaries of `target` that earlier writes left behind (a process that was killed)."""
    return target.parent.glob(f".{target.name}.*.partial")


class PartialFile:
    """A file written under `temporary_name(target)` until it is finished."""

    def __init__(self, target: Path):
        self.target = target
        self.path = temporary_name(target)

    def finish(self, outcome: Outcome) -> Path | None:
        """Complete: move onto the target. Interrupted: keep as `STEM.partial.SUFFIX`. Failed: remove."""
        if outcome == "failed":
            self.path.unlink(missing_ok=True)
            return None
        final = self.target if outcome == "complete" else self.target.with_name(
            f"{self.target.stem}.partial{self.target.suffix}")
        try:
            os.replace(self.path, final)
        except OSError as exc:
            raise OppyError(f"cannot move the finished output into place as {str(final)!r}: "
                            f"{exc.strerror or exc}; it is still at {str(self.path)!r}") from exc
        return final


@contextmanager
def writing(target: str | Path) -> Iterator[Path]:
    """`with writing(target) as path:` write the file at `path`; it becomes `target` when the block ends without
    an error, and is removed when it raises."""
    partial = PartialFile(Path(target))
    try:
        yield partial.path
    except BaseException:
        partial.finish("failed")
        raise
    partial.finish("complete")


def write_file(target: str | Path, data: bytes | str, what: str = "") -> None:
    """Write `data` (text as UTF-8) to `target` through a temporary beside it; an `OppyError` naming the fix when
    it cannot be written (a missing folder, a folder in its place, a full disk)."""
    target = Path(target)
    write: Callable[[Path], object] = ((lambda p: p.write_bytes(data)) if isinstance(data, bytes)
                                       else (lambda p: p.write_text(data, encoding="utf-8")))
    if target.is_dir():
        raise OppyError(f"cannot write {what or 'the file'} to {str(target)!r}: it is a folder")
    try:
        with writing(target) as path:
            write(path)
    except OSError as exc:
        raise output_error(what or str(target), exc, None) from exc
