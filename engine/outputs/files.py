"""Where outputs are written: the one output-path policy, and the one write-then-rename every file goes through.

A file is written under a hidden temporary name beside its target, unique to the process and the write, so that
two renders to one output never share it, and moved onto the target only when whole: a crash leaves the old
file or the new one, never half of one.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import hashlib
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from ..errors import OppyError

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


#: the longest file name most file systems take, in bytes (ext4, XFS, APFS, NTFS in UTF-16 units)
NAME_MAX = 255
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


def interrupted_name(target: Path) -> Path:
    """Where an interrupted output is kept: `STEM.partial.SUFFIX` beside `target` (shortened as `fitting_name`)."""
    return target.with_name(fitting_name(target.parent, "", target.stem, f".partial{target.suffix}"))


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
        """Complete: move onto the target. Interrupted: keep as `STEM.partial.SUFFIX`. Failed: remove."""
        if outcome == "failed":
            self.path.unlink(missing_ok=True)
            return None
        final = self.target if outcome == "complete" else interrupted_name(self.target)
        try:
            move_into_place(self.path, final, self.replace or outcome != "complete")
        except FileExistsError as exc:
            raise taken_meanwhile(final, self.path) from exc
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
