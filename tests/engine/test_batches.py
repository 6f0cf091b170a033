import numpy as np

from oppy.engine.batches import BatchPacker
from oppy.engine.kernels.tiles import cut_tiles, plan_tiles
from tests.conftest import gradient_frame


def planes_and_plans():
    sizes = [(64, 64), (100, 70), (64, 160), (130, 130)]  # 1, 4, 3 and 9 tiles at overlap 16
    planes = [gradient_frame(h, w, seed=k).astype(np.float32) for k, (h, w) in enumerate(sizes)]
    return planes, [plan_tiles(h, w, 64, 16) for h, w in sizes]


def test_tiles_are_cut_straight_into_batches_each_once_and_frames_finish_where_their_last_tile_is():
    planes, plans = planes_and_plans()
    packer = BatchPacker(size=5, tile=64, scale=0.01, shift=-0.5)
    batches, chunks = [], []
    for name, plane, plan in zip("abcd", planes, plans, strict=True):
        frame_chunks, full = packer.add(name, plane, plan)
        chunks.append(frame_chunks)
        batches += full
    batches.append(packer.flush())
    assert packer.flush() is None
    assert [b.filled for b in batches] == [5, 5, 5, 2]  # 17 tiles
    assert [b.finished for b in batches] == [["a", "b"], ["c"], [], ["d"]]
    for plane, plan, frame_chunks in zip(planes, plans, chunks, strict=True):
        whole = cut_tiles(plane, plan, 0.01, -0.5)
        assert [c.first for c in frame_chunks] == list(np.cumsum([0] + [c.count for c in frame_chunks[:-1]]))
        assert sum(c.count for c in frame_chunks) == plan.count
        for chunk in frame_chunks:
            rows = chunk.batch.tiles[chunk.row : chunk.row + chunk.count]
            np.testing.assert_array_equal(rows, whole[chunk.first : chunk.first + chunk.count])
    np.testing.assert_array_equal(batches[-1].tiles[2:], 0.0)  # the last batch is padded with zeros


def test_recycled_arrays_are_reused_and_their_padding_is_zeroed_afresh():
    planes, plans = planes_and_plans()
    packer = BatchPacker(size=8, tile=64)
    _, full = packer.add("big", planes[3], plans[3])
    used = full[0].tiles
    used[:] = 7.0  # what the next user of the array must not see
    packer.recycle(full[0])
    assert full[0].tiles is None
    packer.flush()
    packer.add("small", planes[0], plans[0])
    batch = packer.flush()
    assert batch.tiles is used and batch.filled == 1
    np.testing.assert_array_equal(batch.tiles[0], cut_tiles(planes[0], plans[0])[0])
    np.testing.assert_array_equal(batch.tiles[1:], 0.0)


def test_chunk_outputs_are_views_of_the_batch_output():
    planes, plans = planes_and_plans()
    packer = BatchPacker(size=4, tile=64)
    chunks, full = packer.add("d", planes[3], plans[3])
    last = packer.flush()
    for batch in [*full, last]:
        batch.output = np.random.default_rng(0).random((4, 64, 64, 2), dtype=np.float32)
    assert [c.count for c in chunks] == [4, 4, 1]
    assert np.shares_memory(chunks[2].output, last.output)
    np.testing.assert_array_equal(chunks[2].output, last.output[:1])


def test_a_batch_output_is_reused_once_every_frame_in_it_is_done_with_its_results():
    planes, plans = planes_and_plans()
    packer = BatchPacker(size=5, tile=64)
    b_chunks, none = packer.add("b", planes[1], plans[1])  # 4 tiles
    c_chunks, full = packer.add("c", planes[2], plans[2])  # 3 tiles: 1 in the first batch, 2 in the next
    first, second = full[0], packer.flush()
    assert not none and first.readers == 2 and second.readers == 1 and first.output.shape == (5, 64, 64, 2)
    outputs = [first.output, second.output]
    packer.release(b_chunks)
    assert first.output is outputs[0]  # "c" still reads it
    packer.add("d", planes[0], plans[0])
    assert packer.flush().output is not outputs[0]  # so a new batch may not have it
    packer.release(c_chunks)
    assert first.output is None and second.output is None
    reused = [packer.add(name, planes[0], plans[0]) and packer.flush().output for name in "ef"]
    assert {id(array) for array in reused} == {id(array) for array in outputs}
