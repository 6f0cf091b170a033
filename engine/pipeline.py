"""A chain of stages, one thread each, joined by bounded queues: order kept, memory bounded, busy time measured.

A stage is a function from an iterator of items to an iterator of items, so a stage may batch. The first
error in any stage stops every stage and is raised, unchanged, to whoever iterates the pipeline; a `cancel`
event stops every stage too, and iteration simply ends.
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
#: what a stage named in `idle_stages` receives once its inbox has stayed empty for IDLE_SECONDS after an item
IDLE = object()
IDLE_SECONDS = 0.2


class _Stopped(Exception):
    """Raised inside a stage thread when the pipeline is stopping; carries the seconds spent waiting."""

    def __init__(self, waited: float):
        super().__init__(waited)
        self.waited = waited


@dataclass
class _Channel:
    """A bounded queue whose blocking calls give up when the pipeline stops or is cancelled; counts time spent
    waiting."""

    items: queue.Queue
    stopping: threading.Event
    cancel: threading.Event

    def _check(self, start: float) -> None:
        if self.stopping.is_set() or self.cancel.is_set():
            raise _Stopped(time.perf_counter() - start)

    def put(self, item) -> float:
        start = time.perf_counter()
        while True:
            self._check(start)
            try:
                self.items.put(item, timeout=_POLL_SECONDS)
                return time.perf_counter() - start
            except queue.Full:
                continue

    def get(self, idle_after: float | None = None) -> tuple[object, float]:
        """The next item and the seconds waited for it; `IDLE` instead once `idle_after` seconds passed."""
        start = time.perf_counter()
        while True:
            self._check(start)
            try:
                return self.items.get(timeout=_POLL_SECONDS), time.perf_counter() - start
            except queue.Empty:
                if idle_after is not None and time.perf_counter() - start >= idle_after:
                    return IDLE, time.perf_counter() - start


class Pipeline:
    """Runs `source` and `stages` in threads; iterate it to receive the last stage's items in order.

    Items that are instances of `passthrough` skip the stage functions and travel on unchanged.
    `busy_seconds` holds, per stage name, the wall time each thread spent working (not waiting on a queue).
    Setting `cancel` stops every thread; iteration then ends without an error. When the pipeline stops for
    any reason it calls the source's `cancel()`, where it has one, so a source waiting on input (a pipe)
    returns and its thread can be joined. Stages named in `idle_stages` receive `IDLE` once whenever their
    inbox runs dry for a moment, so that a batching stage can pass on what it holds instead of waiting for
    more (a live pipe may not send more soon). Stages named in `sees_passthrough` receive the passthrough items
    too, to keep them in order with what they hold back (a batching stage).
    """

    def __init__(self, source: Iterable, stages: list[tuple[str, Stage]], queue_size: int = 4,
                 passthrough: type | tuple[type, ...] = (), source_name: str = "decode",
                 cancel: threading.Event | None = None, idle_stages: tuple[str, ...] = (),
                 sees_passthrough: tuple[str, ...] = ()):
        self.source = source
        self.stages = stages
        self.queue_size = queue_size
        self.passthrough = passthrough
        self.source_name = source_name
        self.idle_stages = idle_stages
        self.sees_passthrough = sees_passthrough
        self.busy_seconds: dict[str, float] = {source_name: 0.0, **{name: 0.0 for name, _ in stages}}
        self._stopping = threading.Event()
        self._cancel = cancel or threading.Event()
        #: whether the source was read to its end and every item came out (not stopped or cancelled)
        self.finished = False
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def _channel(self) -> _Channel:
        return _Channel(queue.Queue(maxsize=self.queue_size), self._stopping, self._cancel)

    def _run(self, name: str, stage: Stage | None, inbox: _Channel | None, out: _Channel) -> None:
        """One thread: the source (no stage, no inbox) or a stage fed from `inbox`, writing to `out`."""
        waited = 0.0
        wants_idle = name in self.idle_stages
        passthrough = () if name in self.sees_passthrough else self.passthrough

        def items() -> Iterator:
            nonlocal waited
            idle = True  # IDLE is sent once per dry spell, and only after an item
            while True:
                item, seconds = inbox.get(IDLE_SECONDS if wants_idle and not idle else None)
                waited += seconds
                idle = item is IDLE
                if item is _END:
                    return
                if isinstance(item, passthrough):
                    waited += out.put(item)
                    continue
                yield item

        start = time.perf_counter()
        try:
            for result in (iter(self.source) if stage is None else stage(items())):
                waited += out.put(result)
            waited += out.put(_END)
        except _Stopped as stopped:
            waited += stopped.waited
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
                    self.finished = True
                    break
                yield item
        finally:
            self._stopping.set()
            cancel_source = getattr(self.source, "cancel", None)
            if callable(cancel_source):
                cancel_source()
            for thread in self._threads:
                thread.join()
        if self._errors:
            raise self._errors[0]
