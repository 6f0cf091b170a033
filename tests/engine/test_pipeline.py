import threading
import time

import pytest

from oppy.engine.pipeline import IDLE, Pipeline


def double(items):
    for item in items:
        yield item * 2


def pairs(items):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == 2:
            yield from batch
            batch = []
    yield from batch


def test_order_and_count_survive_many_stages():
    pipeline = Pipeline(range(1000), [("a", double), ("b", pairs), ("c", double)], queue_size=2)
    assert list(pipeline) == [4 * i for i in range(1000)]
    assert set(pipeline.busy_seconds) == {"decode", "a", "b", "c"}
    assert all(seconds >= 0 for seconds in pipeline.busy_seconds.values())


def test_passthrough_items_skip_the_stages():
    source = [1, "skip-me", 2]
    assert list(Pipeline(source, [("a", double)], passthrough=str)) == [2, "skip-me", 4]


def test_memory_is_bounded_by_the_queues():
    produced = []

    def source():
        for i in range(10_000):
            produced.append(i)
            yield i

    pipeline = iter(Pipeline(source(), [("a", double), ("b", double)], queue_size=3))
    next(pipeline)
    # wait until the source stops producing (blocked on a full queue, or done), however loaded the machine is
    last, deadline = -1, time.monotonic() + 30
    while len(produced) != last and time.monotonic() < deadline:
        last = len(produced)
        time.sleep(0.2)
    assert len(produced) < 20  # 3 queues of 3 items plus one item in each of the threads
    pipeline.close()


def test_a_failing_stage_stops_everything_and_raises_its_error():
    def explode(items):
        for item in items:
            if item == 50:
                raise RuntimeError("stage broke at 50")
            yield item

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="stage broke at 50"):
        list(Pipeline(range(10**9), [("a", double), ("boom", explode), ("c", double)]))
    assert threading.active_count() == before


def test_a_failing_source_raises_too():
    def source():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(Pipeline(source(), [("a", double)]))


def test_busy_time_is_work_not_waiting(monkeypatch):
    # a clock that only the slow stage moves, by 0.05 an item (its "work"): the slow stage's busy time is all of it,
    # and the fast one, which spends that time waiting on it, is not charged for it (no wall-clock thresholds)
    import oppy.engine.pipeline as pipeline_module

    clock = {"now": 0.0}
    monkeypatch.setattr(pipeline_module.time, "perf_counter", lambda: clock["now"])

    def slow(items):
        for item in items:
            clock["now"] += 0.05
            yield item

    pipeline = Pipeline(range(20), [("fast", double), ("slow", slow)])
    list(pipeline)
    assert pipeline.busy_seconds["slow"] == pytest.approx(1.0)
    assert pipeline.busy_seconds["fast"] <= 0.25  # at most a few of the slow stage's steps fall between its waits


class Endless:
    """A source that would never end by itself, like a pipe nobody closes; records `cancel()`."""

    def __init__(self):
        self.cancelled = threading.Event()

    def __iter__(self):
        i = 0
        while not self.cancelled.is_set():
            yield i
            i += 1

    def cancel(self):
        self.cancelled.set()


def test_cancel_ends_iteration_cleanly_and_wakes_the_source():
    before = threading.active_count()
    cancel = threading.Event()
    source = Endless()
    pipeline = Pipeline(source, [("a", double)], queue_size=2, cancel=cancel)
    received = []
    for item in pipeline:
        received.append(item)
        if len(received) == 5:
            cancel.set()
    assert received[:5] == [0, 2, 4, 6, 8]
    assert source.cancelled.is_set() and not pipeline.finished
    assert threading.active_count() == before


def test_a_consumer_that_stops_early_stops_every_thread():
    before = threading.active_count()
    items = iter(Pipeline(range(10**9), [("a", double), ("b", double)]))
    assert next(items) == 0
    items.close()
    assert threading.active_count() == before


def test_an_idle_stage_hears_when_its_inbox_runs_dry():
    more = threading.Event()

    def source():
        yield from (1, 2)
        # like a live pipe: nothing more until the consumer has seen what came so far
        if not more.wait(30):
            raise AssertionError("the batching stage never passed on what it held")
        yield 3

    def hold_until_idle(items):
        held = []
        for item in items:
            if item is IDLE:
                yield from held
                held.clear()
            else:
                held.append(item)
        yield from held

    pipeline = iter(Pipeline(source(), [("batch", hold_until_idle)], idle_stages=("batch",)))
    assert [next(pipeline), next(pipeline)] == [1, 2]
    more.set()
    assert list(pipeline) == [3]
