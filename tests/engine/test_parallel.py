import os
import subprocess
import sys
import textwrap

from oppy.engine.kernels.parallel import _turns, launch_guard, threading_layer

# Two threads stream frames through one engine while its own stages launch kernels side by side: under Numba's
# workqueue layer an unguarded concurrent launch aborts the whole process.
_STREAM_FROM_TWO_THREADS = textwrap.dedent("""
    import sys, threading
    import numpy as np
    from oppy.engine import Engine
    from oppy.engine.kernels.parallel import threading_layer
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
              "from oppy.engine.kernels.tiles import cut_tiles, plan_tiles\n"
              "from oppy.engine.kernels.parallel import threading_layer\n"
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


_RENDER = textwrap.dedent("""
    import sys
    from oppy.engine.cli import main
    sys.exit(main([sys.argv[1], sys.argv[2], "--model", sys.argv[3], "--report", sys.argv[4], "-q"]))
""")


def _render_in_a_bare_home(archive, model, tmp_path, home: str, cache: str | None):
    """The CLI in a process whose home, cache, temp and working folders are its own; returns it when done."""
    tmp, cwd = tmp_path / "tmp", tmp_path / "cwd"
    tmp.mkdir()
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME=home, TMPDIR=str(tmp), **({"XDG_CACHE_HOME": cache} if cache else {}))
    done = subprocess.run([sys.executable, "-c", _RENDER, str(archive), str(tmp_path / "out.mp4"), str(model),
                           str(tmp_path / "report.json")], env=env, capture_output=True, text=True, timeout=300,
                          cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out.mp4").is_file() and (tmp_path / "report.json").is_file()
    assert not list(tmp.iterdir()) and not list(cwd.iterdir())  # nothing left in the temp or working folder
    return done


def test_a_render_writes_its_output_and_the_kernel_cache_and_nothing_else(archive, constant_model, tmp_path):
    import oppy.engine

    package = os.path.dirname(oppy.engine.__file__)
    before = {os.path.join(d, f) for d, _, files in os.walk(package) for f in files}
    home = tmp_path / "home"
    home.mkdir()
    _render_in_a_bare_home(archive, constant_model, tmp_path, str(home), None)
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert written and all(name.startswith(".cache/oppy-stream/numba/") for name in written), written
    assert any(name.endswith(".nbi") for name in written)  # compiled kernels, kept for the next start
    after = {os.path.join(d, f) for d, _, files in os.walk(package) for f in files}
    assert {name for name in after - before if not name.endswith(".pyc")} == set()  # nothing beside the package


def test_without_a_writable_home_the_kernels_compile_at_each_start(archive, constant_model, tmp_path):
    # a read-only installation run by a user without a home: no cache folder can be made anywhere
    _render_in_a_bare_home(archive, constant_model, tmp_path, "/dev/null", "/dev/null/cache")
