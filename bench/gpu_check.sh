#!/usr/bin/env bash
# The GPU check of `oppy-bench` in one command: tiles/s on cuda (host buffers, device buffers, CUDA graphs,
# channels-last kernels), cpu and tensorrt, float32 and float16, batch sizes 1..2048; then every pipeline stage
# alone and end to end with --provider cuda on a generated 1024x1024 archive of 64 frames, with the model (x264 at
# the default preset and at ultrafast) and with a free stand-in (the host's ceiling); the encode stage's choices
# (`encode`, both presets); and whether the engine's frames on the GPU are the CPU's (`agreement`, 16 frames).
# JSON, markdown tables, a plot and the logs go into OUT_DIR, named after the GPU. About 2 minutes on an H200 with
# 16 cores; each step has its own time limit (at most 10 minutes in all), and one that fails or runs out leaves the
# others' results.
#
#   bash bench/gpu_check.sh OUT_DIR
#
# It leaves about 15 files; where only a few files come back (the lent GPU machine returns 8 from $OUT), pack them:
#   bash bench/gpu_check.sh /tmp/gpu-check; tar -czf "$OUT/gpu-check.tgz" -C /tmp/gpu-check .
#
# Needs `oppy` importable by $PYTHON (default python3) with onnxruntime-gpu, av, onnx, matplotlib and, for the
# float16 rows, onnxconverter-common (on the lent GPU machine: ../shared/device/stage-gpu-wheels.sh
# onnxconverter-common==1.16.0, then `pip install --target /tmp/site .`). The model is the packaged default
# model, or a unet stand-in of the same cost while there is none (MODEL=path.onnx picks another).
#
# OPPY_GPU_CHECK_CPU=1 runs the same steps small and on the CPU (the GPU providers are reported as skipped), in
# seconds: that is how the tests run this script on machines without a GPU.
set -uo pipefail
out=${1:?usage: bash bench/gpu_check.sh OUT_DIR}
mkdir -p "$out"
py=${PYTHON:-python3}
bench=("$py" -m oppy.bench.cli)
model=(); [ -n "${MODEL:-}" ] && model=(--model "$MODEL")
if [ "${OPPY_GPU_CHECK_CPU:-0}" = 1 ]; then
  pipe_provider=cpu frames=3 size=128x128 batches=1,4 trt_batches=4 pipe_batch=16 repeats=2 encode_frames=16
  max_seconds=0.5 limit_cuda=120 limit_cpu=120 limit_trt=60 limit_pipeline=120 limit_free=120 limit_encode=60
  limit_agreement=60 limit_ultrafast=120 limit_encode_ultrafast=60
else
  pipe_provider=cuda frames=64 size=1024x1024 batches=1,16,64,256,1024,2048 trt_batches=64,256,1024 encode_frames=64
  pipe_batch=1024 repeats=5 max_seconds=2 limit_cuda=150 limit_cpu=60 limit_trt=50 limit_pipeline=90
  limit_free=60 limit_encode=40 limit_agreement=50 limit_ultrafast=60 limit_encode_ultrafast=40
fi
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
tag=$(printf '%s' "${gpu:-cpu}" | tr -cs 'A-Za-z0-9' '-' | tr 'A-Z' 'a-z' | sed 's/^-//; s/-$//')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

step() {  # step NAME SECONDS ARGS...: one oppy-bench command, its table to NAME.md, its log to NAME.log
  local name=$1 limit=$2
  shift 2
  local began=$SECONDS
  timeout "$limit" "${bench[@]}" --json "$out/$name.json" "$@" >"$out/$name.md" 2>"$out/$name.log"
  local rc=$?
  echo "$name: exit $rc after $((SECONDS - began)) s" | tee -a "$out/steps.txt"
  [ $rc -eq 0 ] || status=1
}

{
  date -u
  nvidia-smi 2>&1 || echo "no nvidia-smi"
  "$py" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
  nproc
} >"$out/env.txt" 2>&1
# three tiles runs, each with its own limit, so that a slow TensorRT build cannot cost the CUDA figures
step "tiles-cuda-$tag" "$limit_cuda" tiles "${model[@]}" --providers cuda --precision fp32,fp16 \
  --batch-sizes "$batches" --cuda-graph --nhwc --repeats "$repeats" --max-seconds "$max_seconds" \
  --plot "$out/tiles-cuda-$tag.png"
step "tiles-cpu-$tag" "$limit_cpu" tiles "${model[@]}" --providers cpu --precision fp32,fp16 \
  --batch-sizes "$batches" --repeats "$repeats" --max-seconds "$max_seconds"
step "tiles-tensorrt-$tag" "$limit_trt" tiles "${model[@]}" --providers tensorrt --precision fp32,fp16 \
  --batch-sizes "$trt_batches" --repeats "$repeats" --max-seconds "$max_seconds"
"$py" -m oppy.bench.cli synth "$work/archive" --frames "$frames" --size "$size" 2>>"$out/steps.txt"
step "pipeline-$pipe_provider-$tag" "$limit_pipeline" pipeline "$work/archive" "${model[@]}" \
  --provider "$pipe_provider" --batch-size "$pipe_batch" --repeats 2
step "pipeline-free-$pipe_provider-$tag" "$limit_free" pipeline "$work/archive" --free-model \
  --provider "$pipe_provider" --batch-size "$pipe_batch" --repeats 2
# x264's fastest preset: how far the end to end moves when the encoder costs less
step "pipeline-ultrafast-$pipe_provider-$tag" "$limit_ultrafast" pipeline "$work/archive" "${model[@]}" \
  --provider "$pipe_provider" --batch-size "$pipe_batch" --preset ultrafast --repeats 2
step "encode-$tag" "$limit_encode" encode --frames "$encode_frames" --size "$size" --repeats 3
step "encode-ultrafast-$tag" "$limit_encode_ultrafast" encode --frames "$encode_frames" --size "$size" \
  --preset ultrafast --repeats 3
step "agreement-$pipe_provider-$tag" "$limit_agreement" agreement "$work/archive" "${model[@]}" \
  --provider "$pipe_provider" --batch-size "$pipe_batch" --limit 16
exit $status
