import threading
import time

import pytest

from oppy.engine.pipeline import Pipeline


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
    time.sleep(0.3)
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


def test_busy_time_is_work_not_waiting():
    def slow(items):
        for item in items:
            time.sleep(0.02)
            yield item

    pipeline = Pipeline(range(20), [("fast", double), ("slow", slow)])
    list(pipeline)
    assert pipeline.busy_seconds["slow"] >= 0.35
    assert pipeline.busy_seconds["fast"] < pipeline.busy_seconds["slow"] / 2
