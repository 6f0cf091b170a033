"""Where outputs are written: the one output-path policy, and the one write-then-rename every file goes through.

A file is written under a hidden temporary name beside its target, unique to the process and the write (two renders
never share it), and moved onto the target only when whole: a crash leaves the old file or the new, never half.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import hashlib
import json
import os
import secrets
import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from ..errors import OppyError
from ..frames import display_name

STDOUT = "-"
Outcome = Literal["complete", "interrupted", "failed"]
#: the longest file name most file systems take, in bytes (ext4, XFS, APFS, NTFS in UTF-16 units); Linux's path
NAME_MAX = 255
PATH_MAX = 4096
#: the suffix of every file a folder of frames holds (`sinks.ImageFolderSink` writes PNGs only)
FRAME_SUFFIX = ".png"


def output_error(where: str, exc: OSError, frames: int | None) -> OppyError:
    """An `OppyError` for a failed write (after `frames` frames, where written), saying what to do about it."""
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


def _model_file(model: str | Path | None) -> str | Path | None:  # a folder is no model (its own check says)
    return None if model is None or os.path.isdir(model) else model


def _same_or_inside(path: Path, other: Path) -> bool:
    """Whether `path` is `other`, or lies inside the folder `other` (links resolved where they can be)."""
    try:
        path, other = path.resolve(), other.resolve()
    except (OSError, RuntimeError):  # a loop of links (RuntimeError before Python 3.13): refused by `look_at`
        path, other = path.absolute(), other.absolute()
    return path == other or other in path.parents


def look_at(path: Path, what: str) -> os.stat_result | None:
    """The status of `path` (links followed), None where nothing is there; an `OppyError` naming `what` and the
    problem where the path cannot even be looked at (a name or a path too long, a loop of links, a folder on the
    way that may not be searched)."""
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError as exc:  # a NUL byte in the path
        raise OppyError(f"{what} {str(path)!r}: a path cannot hold a NUL byte: choose another path") from exc
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            problem = f"the name is too long (a file name takes at most {NAME_MAX} bytes, a path {PATH_MAX})"
        else:
            problem = "it is a loop of symbolic links" if exc.errno == errno.ELOOP else str(exc.strerror or exc)
        raise OppyError(f"{what} {str(path)!r}: {problem}: choose another path") from exc


def _is_folder(found: os.stat_result | None) -> bool:
    return found is not None and stat.S_ISDIR(found.st_mode)


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
    if _is_folder(found) and not folder:
        raise OppyError(f"output {str(path)!r} is a folder: remove it or name another file for the video")
    if not _is_folder(found) and folder and not overwrite:
        raise OppyError(f"output {str(path)!r} is a file where a folder of frames would go: pass --overwrite "
                        "(overwrite=True) to replace it")
    held, foreign = _folder_holds(path) if _is_folder(found) else (True, None)
    if foreign is not None:  # refused also without --overwrite: the render could never replace it
        raise OppyError(f"output folder {str(path)!r} holds {foreign!r}, which is not a frame a render wrote, and a "
                        "render replaces the whole folder: choose an empty or new folder for the frames")
    if held and not overwrite:
        raise OppyError(f"output {str(path)!r} already exists: pass --overwrite (overwrite=True) to replace it")


def _check_folder_of(path: Path, flag: str) -> None:
    """The folder `path` (the output, or the file of `flag`) is written in exists, is a folder, may be written."""
    parent, what = path.parent, f"{flag} {str(path)!r}" if flag else repr(str(path))
    found = look_at(parent, f"the folder of {flag or 'the output'}")
    if not _is_folder(found):
        problem = "does not exist" if found is None else "is a file, not a folder"
        raise OppyError(f"cannot write {what}: folder {str(parent)!r} {problem}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OppyError(f"cannot write {what}: folder {str(parent)!r} is not writable: choose an output folder you "
                        "may write to")


def check_report(report: str | Path, output: str | Path, source: str | Path | None = None,
                 flag: str = "--report", overwrite: bool = False, model: str | Path | None = None) -> None:
    """Refuse a path for a file written beside the output (the report; a contact sheet: `flag`) that would replace
    the output, the input or the `model` (also with `overwrite`), an existing file unless told to `overwrite` it,
    a folder, a path whose folder does not exist or that the system cannot look at (found before the render, not
    after it). A report to `-` goes to stdout (as `-` does for a video tool), which the video must leave free."""
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
    if _is_folder(found):
        example = report / ("sheet.png" if flag == "--sheet" else "report.json")
        raise OppyError(f"{flag} {str(report)!r} is a folder: give a file name, e.g. {str(example)!r}")
    if found is not None and not overwrite and not (flag == "--report" and _unfinished_render_report(report, output)):
        raise OppyError(f"{flag} {str(report)!r} already exists: pass --overwrite (overwrite=True) to replace it")
    _check_folder_of(report, flag)


#: a report larger than this is not read to see whether its render finished (one of 100,000 frames is about 40 MB)
REPORT_READ_LIMIT = 256 * 2**20


def _unfinished_render_report(report: Path, output: str | Path) -> bool:
    """Whether `report` is the report of a render of this same `output` that did not finish (interrupted, or with
    chunks that failed): the rerun that finishes it replaces it without --overwrite, as it resumes the render."""
    try:
        if not report.is_file() or report.stat().st_size > REPORT_READ_LIMIT:
            return False
        written = json.loads(report.read_bytes())
    except (OSError, ValueError):  # unreadable, not JSON, not UTF-8: not a report of ours
        return False
    if not isinstance(written, dict) or written.get("output") not in (str(output), display_name(str(output))):
        return False
    return written.get("interrupted") is True or bool(written.get("failed"))


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _name_max(folder: Path) -> int:
    try:
        return min(NAME_MAX, os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def _name_tag(name: str) -> str:
    return "~" + hashlib.sha1(os.fsencode(name)).hexdigest()[:12]


def fitting_name(folder: Path, prefix: str, name: str, suffix: str) -> str:
    """`prefix + name + suffix`, with `name` cut short and a hash of it kept where the whole would pass the
    folder's longest file name: a temporary beside any legal name is a legal name."""
    limit = _name_max(folder)
    whole = f"{prefix}{name}{suffix}"
    if len(os.fsencode(whole)) <= limit:
        return whole
    tag = _name_tag(name)
    room = limit - len(os.fsencode(f"{prefix}{tag}{suffix}"))
    if room < 1:  # the suffix itself is the long part (a name ending in a long "extension"): keep its end
        keep = limit - len(os.fsencode(f"{prefix}{tag}"))
        tail = suffix
        while len(os.fsencode(tail)) > keep:
            tail = tail[1:]
        return f"{prefix}{tag}{tail}"
    cut = name
    while cut and len(os.fsencode(cut)) > room:
        cut = cut[:-1]
    return f"{prefix}{cut}{tag}{suffix}"


def temporary_name(target: Path) -> Path:
    """A hidden name beside `target` for writing it, unique to this process and this write (shortened, with a hash
    of the name, where `target`'s name is near the file system's limit)."""
    return target.with_name(fitting_name(target.parent, ".", target.name,
                                         f".{os.getpid()}-{secrets.token_hex(4)}.partial"))


def interrupted_name(target: Path, count: int = 1) -> Path:
    """Where an interrupted output is kept: `STEM.partial.SUFFIX` beside `target`, `STEM.partial-2.SUFFIX` as the
    second choice and so on (`count`; shortened as `fitting_name`)."""
    mark = ".partial" if count == 1 else f".partial-{count}"
    return target.with_name(fitting_name(target.parent, "", target.stem, f"{mark}{target.suffix}"))


def interrupted_copies(target: Path) -> Iterator[Path]:
    """The interrupted outputs kept beside `target` (`interrupted_name(target, 1)`, `..., 2)`, ... up to the first
    name that is free)."""
    for count in range(1, 1_000_000):
        kept = interrupted_name(target, count)
        if not (kept.exists() or kept.is_symlink()):
            return
        yield kept


def keep_interrupted(work: Path, target: Path, tries: int = 1000) -> Path:
    """Move the interrupted output `work` (a file or a folder) beside `target` as `interrupted_name(target)`, or
    where something is at that name already (an older interrupted render's, the user's), as the first free
    `...partial-N`: nothing the render did not make is replaced or removed. Returns where it is kept."""
    for count in range(1, tries + 1):
        kept = interrupted_name(target, count)
        try:
            if kept.exists() or kept.is_symlink():  # also an empty folder: not ours to take
                continue
            move_into_place(work, kept, replace=False)
        except FileExistsError:  # appeared meanwhile: the next name
            continue
        except OSError as exc:
            raise OppyError(f"cannot keep the interrupted output as {str(kept)!r}: {exc.strerror or exc}; it is at "
                            f"{str(work)!r}") from exc
        return kept
    raise OppyError(f"cannot keep the interrupted output beside {str(target)!r}: {interrupted_name(target).name!r} "
                    f"and the next {tries - 1} names are taken; it is at {str(work)!r}")


def leftover_temporaries(target: Path) -> Iterator[Path]:
    """Temporaries of `target` that earlier writes left behind (a process that was killed)."""
    whole = set(target.parent.glob(f".{glob.escape(target.name)}.*.partial"))
    shortened = set(target.parent.glob(f".*{_name_tag(target.name)}.*.partial"))
    return iter(sorted(whole | shortened))


def _renameat2_noreplace(src: Path, dst: Path) -> bool:
    """Linux's rename that fails where `dst` exists (`FileExistsError`); False where this system or file system
    has no such call."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.renameat2
    except (OSError, AttributeError):
        return False
    if call(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(dst))


def move_into_place(src: Path, dst: Path, replace: bool) -> None:
    """Move a finished output onto its target. Without `replace`, never over a file or folder that appeared there
    meanwhile (another render to the same output): `FileExistsError`, `src` left where it is."""
    if replace:
        os.replace(src, dst)
        return
    if src.is_dir() and dst.is_dir() and not dst.is_symlink():
        try:  # a folder takes the place of an empty one (the policy allows that); never of one that holds files
            os.rename(src, dst)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst)) from exc
            raise
        return
    if _renameat2_noreplace(src, dst):
        return
    if src.is_dir():
        if dst.exists() or dst.is_symlink():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
        os.rename(src, dst)
        return
    try:
        os.link(src, dst)  # fails where dst exists, whatever appeared there
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK, errno.EXDEV):
            raise
        if dst.exists() or dst.is_symlink():  # a file system without hard links: check, then move
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst)) from exc
        os.rename(src, dst)
        return
    src.unlink()


def taken_meanwhile(final: Path, kept: Path) -> OppyError:
    """The error for an output that another writer created while this one rendered."""
    return OppyError(f"{str(final)!r} appeared while this render ran (another render to the same output?) and is "
                     f"kept; this render's result is at {str(kept)!r}: pass --overwrite (overwrite=True) to replace "
                     "an output")


def place_folder(work: Path, final: Path) -> Path:
    """A finished folder of frames moved onto `final` without replacing one that appeared there meanwhile."""
    try:
        move_into_place(work, final, replace=False)
    except FileExistsError as exc:
        raise taken_meanwhile(final, work) from exc
    except OSError as exc:
        raise OppyError(f"cannot move the finished frames into place as {str(final)!r}: {exc.strerror or exc}; "
                        f"they are in {str(work)!r}") from exc
    return final


def remove_path(path: Path) -> None:
    """Remove a file, a link or a folder of files, whichever is there (nothing where nothing is)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_bytes(path: Path, data) -> None:
    """Write an encoded image (a numpy buffer) through Python's file object, whose failures carry their errno (a
    full disk is ENOSPC), where numpy's `tofile` says only how many bytes it wrote."""
    with open(path, "wb") as handle:
        handle.write(memoryview(data).cast("B"))


class PartialFile:
    """A file written under `temporary_name(target)` until it is finished; without `replace`, finishing never
    replaces a file that appeared at the target meanwhile."""

    def __init__(self, target: Path, replace: bool = True):
        self.target, self.replace = target, replace
        self.path = temporary_name(target)

    def finish(self, outcome: Outcome) -> Path | None:
        """Complete: move onto the target. Interrupted: keep as `STEM.partial.SUFFIX` (or a free name beside it:
        `keep_interrupted`). Failed: remove. Returns where the file is."""
        if outcome == "failed":
            self.path.unlink(missing_ok=True)
            return None
        if outcome == "interrupted":
            return keep_interrupted(self.path, self.target)
        final = self.target
        try:
            move_into_place(self.path, final, self.replace)
        except FileExistsError as exc:
            raise taken_meanwhile(final, self.path) from exc
        except OSError as exc:
            raise OppyError(f"cannot move the finished output into place as {str(final)!r}: "
                            f"{exc.strerror or exc}; it is still at {str(self.path)!r}") from exc
        return final


@contextmanager
def writing(target: str | Path) -> Iterator[Path]:
    """`with writing(target) as path:` write at `path`; it becomes `target` if the block ends well, else removed."""
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
    if _is_folder(look_at(target, what or "the file")):
        raise OppyError(f"cannot write {what or 'the file'} to {str(target)!r}: it is a folder")
    try:
        with writing(target) as path:
            write(path)
    except OSError as exc:
        raise output_error(what or str(target), exc, None) from exc
