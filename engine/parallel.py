"""Numba parallel kernels that several pipeline threads may launch at once, whatever threading layer Numba found.

Numba's TBB and OpenMP layers take concurrent launches. Where neither library is installed (a slim container,
macOS without libomp), Numba falls back to its workqueue layer, which aborts the whole process on a concurrent
launch; there, launches take turns instead.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import numba
import numpy as np
from numba import njit, prange

_turns = threading.Lock()
_guard: AbstractContextManager | None = None


@njit(parallel=True, cache=True)
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
    """`numba.njit(parallel=True, nogil=True, cache=True, **options)`, launched inside `launch_guard()`."""

    def wrap(function: Callable) -> Callable:
        kernel = njit(parallel=True, nogil=True, cache=True, **options)(function)

        @functools.wraps(function)
        def launch(*args):
            with launch_guard():
                return kernel(*args)

        launch.kernel = kernel
        return launch

    return wrap
