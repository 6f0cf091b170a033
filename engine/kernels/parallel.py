"""Numba parallel kernels that several pipeline threads may launch at once, whatever threading layer Numba found,
compiled once per machine into the user's cache folder.

Numba's TBB and OpenMP layers take concurrent launches. Where neither library is installed (a slim container,
macOS without libomp), Numba falls back to its workqueue layer, which aborts the whole process on a concurrent
launch; there, launches take turns instead.

Compiled kernels go to `$NUMBA_CACHE_DIR` if set, else to `$XDG_CACHE_HOME/oppy-stream/numba` (`~/.cache/...`),
never beside the installed package: files there would outlive an uninstall (and a read-only installation has no
room for them). Where no cache folder can be written, kernels are compiled at each start instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

_turns = threading.Lock()
_guard: AbstractContextManager | None = None


def cache_folder() -> Path | None:
    """The folder the engine's compiled kernels are kept in, created if need be; None where none can be written."""
    given = os.environ.get("NUMBA_CACHE_DIR")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "oppy-stream" / "numba"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        return None
    return folder


_CACHE = cache_folder()


@contextlib.contextmanager
def _caching_into_our_folder() -> Iterator[None]:
    """Numba reads its cache folder when a function is decorated: point it at ours for our decorations only, so
    that other Numba code in the process keeps its own."""
    before = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(_CACHE) if _CACHE is not None else before
    try:
        yield
    finally:
        numba.config.CACHE_DIR = before


def cached_njit(**options) -> Callable[[Callable], Callable]:
    """`numba.njit(**options)`, cached in `cache_folder()` (not cached where there is none)."""

    def wrap(function: Callable) -> Callable:
        with _caching_into_our_folder():
            return njit(cache=_CACHE is not None, **options)(function)

    return wrap


@cached_njit(parallel=True)
def _probe(out):
    for i in prange(out.shape[0]):
        out[i] = i


def threading_layer() -> str:
    """The threading layer Numba runs parallel kernels on ("tbb", "omp" or "workqueue"; "none" with
    NUMBA_DISABLE_JIT); the first call launches a small kernel, since Numba picks its layer at the first launch."""
    launch_guard()
    return _layer()


def launch_guard() -> AbstractContextManager:
    """What one parallel launch runs inside: nothing under a thread-safe layer, a process-wide lock under workqueue."""
    global _guard
    if _guard is None:
        with _turns:
            if _guard is None:
                _guard = _turns if _layer() == "workqueue" else nullcontext()
    return _guard


def _layer() -> str:
    _probe(np.empty(4, np.int64))
    try:
        return numba.threading_layer()
    except ValueError:  # no layer was started: NUMBA_DISABLE_JIT runs kernels as Python, in the calling thread
        return "none"


def parallel_kernel(**options) -> Callable[[Callable], Callable]:
    """`numba.njit(parallel=True, nogil=True, **options)`, cached (`cached_njit`), launched inside `launch_guard()`."""

    def wrap(function: Callable) -> Callable:
        kernel = cached_njit(parallel=True, nogil=True, **options)(function)

        @functools.wraps(function)
        def launch(*args):
            with launch_guard():
                return kernel(*args)

        launch.kernel = kernel
        return launch

    return wrap
