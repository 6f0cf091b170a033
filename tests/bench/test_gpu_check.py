import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "bench" / "gpu_check.sh"


def test_the_gpu_check_runs_its_steps_on_the_cpu_and_leaves_json_and_tables(tiny_seed, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OPPY_GPU_CHECK_CPU": "1", "PYTHON": sys.executable, "MODEL": str(tiny_seed)}
    done = subprocess.run(["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = (out / "steps.txt").read_text()
    assert steps.count(": exit 0 after") == 9, steps
    tag = next(out.glob("tiles-tensorrt-*.json")).name.removeprefix("tiles-tensorrt-").removesuffix(".json")
    cpu = json.loads((out / f"tiles-cpu-{tag}.json").read_text())["tiles"]["rows"]
    assert {r["precision"] for r in cpu} == {"fp32", "fp16"} and all(r["status"] == "ok" for r in cpu)
    cuda = json.loads((out / f"tiles-cuda-{tag}.json").read_text())["tiles"]["rows"]
    assert {r["provider"] for r in cuda} == {"cuda"} and any(r["cuda_graph"] for r in cuda)
    assert any(r["nhwc"] for r in cuda)
    trt = json.loads((out / f"tiles-tensorrt-{tag}.json").read_text())["tiles"]["rows"]
    assert trt and {r["provider"] for r in trt} == {"tensorrt"}
    pipeline = json.loads(next(out.glob("pipeline-cpu-*.json")).read_text())["pipeline"]
    assert pipeline["frames"] == 3 and pipeline["slowest_stage"]
    ultrafast = json.loads(next(out.glob("pipeline-ultrafast-*.json")).read_text())["pipeline"]
    assert ultrafast["frames"] == 3 and ultrafast["preset"] == "ultrafast"
    free = json.loads(next(out.glob("pipeline-free-*.json")).read_text())["pipeline"]
    assert free["frames"] == 3 and "free stand-in" in free["model"]
    assert "| **end to end** |" in next(out.glob("pipeline-*.md")).read_text()
    assert "onnxruntime" in (out / "env.txt").read_text()
    encodes = {json.loads(path.read_text())["encode"]["preset"] for path in out.glob("encode-*.json")}
    assert encodes == {"veryfast", "ultrafast"}
    agreement = json.loads(next(out.glob("agreement-*.json")).read_text())["agreement"]
    assert agreement["frames"] == 3 and agreement["provider"] == "CPUExecutionProvider"


def test_the_gpu_check_wants_a_folder():
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "usage" in done.stderr
