import os
import subprocess
import sys
import textwrap

from oppy.engine.parallel import _turns, launch_guard, threading_layer

# Two threads stream frames through one engine while its own stages launch kernels side by side: under Numba's
# workqueue layer an unguarded concurrent launch aborts the whole process.
_STREAM_FROM_TWO_THREADS = textwrap.dedent("""
    import sys, threading
    import numpy as np
    from oppy.engine import Engine
    from oppy.engine.parallel import threading_layer
    frames = [np.random.default_rng(k).integers(0, 256, (300, 400), dtype=np.uint8) for k in range(24)]
    results = {}
    with Engine(sys.argv[1], provider="cpu", batch_size=16, queue_size=2) as engine:
        def stream(name):
            results[name] = [rgb.mean() for rgb in engine.stream(frames)]
        threads = [threading.Thread(target=stream, args=(n,)) for n in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        alone = [engine.colorize(f).mean() for f in frames]
    assert results["a"] == results["b"] == alone, "the frames differ"
    print(threading_layer())
""")


def test_kernels_launched_from_many_threads_take_turns_under_numbas_workqueue_layer(lightness_model):
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    done = subprocess.run([sys.executable, "-c", _STREAM_FROM_TWO_THREADS, str(lightness_model)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["workqueue"]


def test_kernels_run_as_python_under_numba_disable_jit():
    script = ("import numpy as np\n"
              "from oppy.engine.tiles import cut_tiles, plan_tiles\n"
              "from oppy.engine.parallel import threading_layer\n"
              "plan = plan_tiles(70, 90, 64, 16)\n"
              "print(cut_tiles(np.ones((70, 90), np.float32), plan, 2.0).sum() == plan.count * 64 * 64 * 2, "
              "threading_layer())\n")
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "none"]


def test_launches_take_turns_only_where_the_layer_is_not_thread_safe():
    layer = threading_layer()
    assert layer in {"tbb", "omp", "workqueue", "none"}
    assert (launch_guard() is _turns) == (layer == "workqueue")
