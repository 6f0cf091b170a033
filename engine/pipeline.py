"""A chain of stages, one thread each, joined by bounded queues: order kept, memory bounded, busy time measured.

A stage is a function from an iterator of items to an iterator of items, so a stage may batch. The first
error in any stage stops every stage and is raised, unchanged, to whoever iterates the pipeline.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

Stage = Callable[[Iterator], Iterator]

_END = object()
_POLL_SECONDS = 0.05


class _Stopped(Exception):
    """Raised inside a stage thread when the pipeline is stopping."""


@dataclass
class _Channel:
    """A bounded queue whose blocking calls give up when the pipeline stops; counts time spent waiting."""

    items: queue.Queue
    stopping: threading.Event

    def put(self, item) -> float:
        start = time.perf_counter()
        while True:
            if self.stopping.is_set():
                raise _Stopped
            try:
                self.items.put(item, timeout=_POLL_SECONDS)
                return time.perf_counter() - start
            except queue.Full:
                continue

    def get(self) -> tuple[object, float]:
        start = time.perf_counter()
        while True:
            if self.stopping.is_set():
                raise _Stopped
            try:
                return self.items.get(timeout=_POLL_SECONDS), time.perf_counter() - start
            except queue.Empty:
                continue


class Pipeline:
    """Runs `source` and `stages` in threads; iterate it to receive the last stage's items in order.

    Items that are instances of `passthrough` skip the stage functions and travel on unchanged.
    `busy_seconds` holds, per stage name, the wall time each thread spent working (not waiting on a queue).
    """

    def __init__(self, source: Iterable, stages: list[tuple[str, Stage]], queue_size: int = 4,
                 passthrough: type | tuple[type, ...] = (), source_name: str = "decode"):
        self.source = source
        self.stages = stages
        self.queue_size = queue_size
        self.passthrough = passthrough
        self.source_name = source_name
        self.busy_seconds: dict[str, float] = {source_name: 0.0, **{name: 0.0 for name, _ in stages}}
        self._stopping = threading.Event()
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def _channel(self) -> _Channel:
        return _Channel(queue.Queue(maxsize=self.queue_size), self._stopping)

    def _run(self, name: str, stage: Stage | None, inbox: _Channel | None, out: _Channel) -> None:
        """One thread: the source (no stage, no inbox) or a stage fed from `inbox`, writing to `out`."""
        waited = 0.0

        def items() -> Iterator:
            nonlocal waited
            while True:
                item, seconds = inbox.get()
                waited += seconds
                if item is _END:
                    return
                if isinstance(item, self.passthrough):
                    waited += out.put(item)
                    continue
                yield item

        start = time.perf_counter()
        try:
            for result in (iter(self.source) if stage is None else stage(items())):
                waited += out.put(result)
            waited += out.put(_END)
        except _Stopped:
            pass
        except BaseException as exc:
            self._fail(exc)
        finally:
            self.busy_seconds[name] = time.perf_counter() - start - waited

    def _fail(self, exc: BaseException) -> None:
        self._errors.append(exc)
        self._stopping.set()

    def _start(self) -> _Channel:
        channel = None
        for name, stage in [(self.source_name, None), *self.stages]:
            out = self._channel()
            self._threads.append(threading.Thread(target=self._run, args=(name, stage, channel, out),
                                                  name=f"oppy-{name}", daemon=True))
            channel = out
        for thread in self._threads:
            thread.start()
        return channel

    def __iter__(self) -> Iterator:
        last = self._start()
        try:
            while True:
                try:
                    item, _ = last.get()
                except _Stopped:
                    break
                if item is _END:
                    break
                yield item
        finally:
            self._stopping.set()
            for thread in self._threads:
                thread.join()
        if self._errors:
            raise self._errors[0]
