"""The output-path policy, before any work: what an output, a report or a contact sheet may be, and what a render
may replace (nothing it did not make, never the input or the model). The writes themselves are `files`'.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from ..errors import OppyError
from ..frames import display_name
from .files import FRAME_SUFFIX, STDOUT, is_folder, look_at


def _model_file(model: str | Path | None) -> str | Path | None:  # a folder is no model (its own check says)
    return None if model is None or os.path.isdir(model) else model


def _same_or_inside(path: Path, other: Path) -> bool:
    """Whether `path` is `other`, or lies inside the folder `other` (links resolved where they can be)."""
    try:
        path, other = path.resolve(), other.resolve()
    except (OSError, RuntimeError):  # a loop of links (RuntimeError before Python 3.13): refused by `look_at`
        path, other = path.absolute(), other.absolute()
    return path == other or other in path.parents


def _folder_holds(folder: Path) -> tuple[bool, str | None]:
    """Whether `folder` holds anything, and the name of an entry in it that no render of frames writes (such a
    folder holds only its frames, each a file of its own named `*.png`; None where it holds nothing else)."""
    held = False
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                held = True
                if not (entry.name.endswith(FRAME_SUFFIX) and entry.is_file(follow_symlinks=False)):
                    return True, entry.name
    except OSError as exc:
        raise OppyError(f"output folder {str(folder)!r} cannot be listed ({exc.strerror or exc}): choose an empty "
                        "or new folder for the frames") from exc
    return held, None


def check_output(path: str | Path, overwrite: bool, source: str | Path | None = None, folder: bool = False,
                 report: str | Path | None = None, model: str | Path | None = None,
                 sheet: str | Path | None = None) -> None:
    """The output-path policy, before any work: refuse an output that is the input or the `model` or lies inside
    an input folder (even with `overwrite`), an existing output unless told to overwrite it, a video named like a
    file where a folder is (`folder`: the output is a folder of images), a folder that does not exist or may not be
    written, binary output to a terminal, a path the system cannot look at (too long, a loop of links), and a
    `report` or contact `sheet` that `check_report` refuses; the sheet may not be the report either. A folder of
    frames replaces the whole folder: one that holds the input, the model or anything but frames is refused."""
    for extra, flag in ((report, "--report"), (sheet, "--sheet")):
        if extra is not None:
            check_report(extra, path, source, flag, overwrite=overwrite, model=model)
    if report is not None and sheet is not None and Path(sheet).absolute() == Path(report).absolute():
        raise OppyError(f"--sheet and --report are both {str(sheet)!r}: give each a file of its own")
    if str(path) == STDOUT:
        if sys.stdout is None or sys.stdout.isatty():
            raise OppyError("OUTPUT - writes video to stdout, which is a terminal here: redirect it to a file or "
                            "pipe it into another program")
        return
    path = Path(path).absolute()
    if not path.name:
        raise OppyError(f"output {str(path)!r} is the root of the file system: name a folder or a file in it")
    found = look_at(path, "output")
    for kept, what in ((source, "the input"), (_model_file(model), "the model")):
        if kept is not None and str(kept) != STDOUT and _same_or_inside(path, Path(kept)):
            raise OppyError(f"output {str(path)!r} is {what} or lies inside it: it would destroy what is being "
                            "read; write the output elsewhere")
        if folder and kept is not None and str(kept) != STDOUT and _same_or_inside(Path(kept), path):
            raise OppyError(f"output folder {str(path)!r} holds {what}, and a render replaces the whole folder: "
                            "write the frames to a folder of their own")
    _check_existing_output(path, found, overwrite, folder)
    _check_folder_of(path, "")


def _check_existing_output(path: Path, found: os.stat_result | None, overwrite: bool, folder: bool) -> None:
    """What `check_output` refuses of what is at `path` already (`found`)."""
    if found is None:
        return
    if is_folder(found) and not folder:
        raise OppyError(f"output {str(path)!r} is a folder: remove it or name another file for the video")
    if not is_folder(found) and folder and not overwrite:
        raise OppyError(f"output {str(path)!r} is a file where a folder of frames would go: pass --overwrite "
                        "(overwrite=True) to replace it")
    held, foreign = _folder_holds(path) if is_folder(found) else (True, None)
    if foreign is not None:  # refused also without --overwrite: the render could never replace it
        raise OppyError(f"output folder {str(path)!r} holds {foreign!r}, which is not a frame a render wrote, and a "
                        "render replaces the whole folder: choose an empty or new folder for the frames")
    if held and not overwrite:
        raise OppyError(f"output {str(path)!r} already exists: pass --overwrite (overwrite=True) to replace it")


def _check_folder_of(path: Path, flag: str) -> None:
    """The folder `path` (the output, or the file of `flag`) is written in exists, is a folder, may be written."""
    parent, what = path.parent, f"{flag} {str(path)!r}" if flag else repr(str(path))
    found = look_at(parent, f"the folder of {flag or 'the output'}")
    if not is_folder(found):
        problem = "does not exist" if found is None else "is a file, not a folder"
        raise OppyError(f"cannot write {what}: folder {str(parent)!r} {problem}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OppyError(f"cannot write {what}: folder {str(parent)!r} is not writable: choose an output folder you "
                        "may write to")


def check_report(report: str | Path, output: str | Path, source: str | Path | None = None,
                 flag: str = "--report", overwrite: bool = False, model: str | Path | None = None) -> None:
    """Refuse a path for a file written beside the output (the report; a contact sheet: `flag`) that would replace
    the output, the input or the `model` (also with `overwrite`), an existing file unless told to `overwrite` it
    (a report that an unfinished render of this output left is replaced by the rerun without), a folder, a path
    whose folder does not exist or that the system cannot look at (found before the render, not after it). A
    report to `-` goes to stdout (as `-` does for a video tool), which the video must leave free."""
    if str(report) == STDOUT:
        if flag != "--report":
            raise OppyError(f"{flag} - would make a file named '-': give the contact sheet a name, e.g. sheet.png")
        if str(output) == STDOUT or sys.stdout is None:
            where = "the video goes to" if str(output) == STDOUT else "is closed here"
            raise OppyError(f"--report - writes the report to stdout, which {where}: give it a file name instead")
        return
    report = Path(report)
    found = look_at(report, flag)
    for other, what in ((output, "the output"), (source, "the input"), (_model_file(model), "the model")):
        if other is not None and str(other) != STDOUT and _same_or_inside(report, Path(other)):
            raise OppyError(f"{flag} {str(report)!r} is {what} or lies inside it: give it a path of its own")
    if is_folder(found):
        example = report / ("sheet.png" if flag == "--sheet" else "report.json")
        raise OppyError(f"{flag} {str(report)!r} is a folder: give a file name, e.g. {str(example)!r}")
    if found is not None and not overwrite and not (
            flag == "--report" and _unfinished_render_report(report, found, output)):
        raise OppyError(f"{flag} {str(report)!r} already exists: pass --overwrite (overwrite=True) to replace it")
    _check_folder_of(report, flag)


#: a report larger than this is not read to see whether its render finished (one of 100,000 frames is about 40 MB)
REPORT_READ_LIMIT = 256 * 2**20


def _unfinished_render_report(report: Path, found: os.stat_result, output: str | Path) -> bool:
    """Whether `report` (whose status is `found`) is the report of a render of this same `output` that did not
    finish (interrupted, or with chunks that failed): the rerun that finishes it replaces it without --overwrite, as
    it resumes the render."""
    if not stat.S_ISREG(found.st_mode) or found.st_size > REPORT_READ_LIMIT:
        return False
    try:
        written = json.loads(report.read_bytes())
    except (OSError, ValueError):  # unreadable, not JSON, not UTF-8: not a report of ours
        return False
    if not isinstance(written, dict) or written.get("output") not in (str(output), display_name(str(output))):
        return False
    return written.get("interrupted") is True or bool(written.get("failed"))
