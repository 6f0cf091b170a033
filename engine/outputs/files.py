"""Where outputs are written: the one write-then-rename every file goes through (the output-path policy, what may
be written where, is `policy`).

A file is written under a hidden temporary name beside its target, unique to the process and the write (two renders
never share it), and moved onto the target only when whole: a crash leaves the old file or the new, never half.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import hashlib
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


def is_folder(found: os.stat_result | None) -> bool:
    return found is not None and stat.S_ISDIR(found.st_mode)


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
    if is_folder(look_at(target, what or "the file")):
        raise OppyError(f"cannot write {what or 'the file'} to {str(target)!r}: it is a folder")
    try:
        with writing(target) as path:
            write(path)
    except OSError as exc:
        raise output_error(what or str(target), exc, None) from exc
