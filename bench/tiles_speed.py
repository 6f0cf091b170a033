"""Model-only tiles/s for each provider, precision and batch size, beside the model's FLOPs and the device's roof.

Every combination gets its own warm-up and the median of timed repeats. Inputs and outputs are bound once
(I/O binding): in host memory, as the engine binds them (its graph as it is, batch dimension symbolic); on CUDA
and TensorRT also in device memory, with the batch fixed in the graph (what the model alone can do), and with
CUDA graphs replaying the whole run on those fixed device buffers.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from oppy.engine.config import PROVIDERS
from oppy.engine.contract import ModelContract
from oppy.engine.kernels.lab import gray_to_l
from oppy.engine.kernels.tiles import cut_tiles, plan_tiles
from oppy.engine.session import choose_providers, precision_copy, session_options

from .device import peak_flops
from .flops import fix_batch, flops_per_tile
from .synth import synth_frames
from .timing import machine

log = logging.getLogger(__name__)

BATCH_SIZES = (1, 16, 64, 256, 1024)
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Variant:
    """One way of running the model: where the bound buffers live, and whether CUDA graphs replay the run."""

    provider: str  # "cpu", "cuda" or "tensorrt"
    precision: str  # "fp32", "fp16" or "int8" (the model's copy `oppy-export --int8` wrote)
    binding: str = "host"  # "host": numpy buffers, as the engine binds them; "device": GPU memory
    cuda_graph: bool = False
    nhwc: bool = False  # CUDA: ask for channels-last kernels (prefer_nhwc), sparing the layout transposes

    @property
    def name(self) -> str:
        graph = ", CUDA graph" if self.cuda_graph else ""
        layout = ", NHWC" if self.nhwc else ""
        return f"{self.provider} {self.precision}, {self.binding} buffers{graph}{layout}"


def fp16_model(model: Path, out: Path) -> tuple[Path | None, str | None]:
    """A float16 copy of `model` (float32 input and output) written to `out`, or None and why not."""
    try:
        import onnx
        import onnxconverter_common  # noqa: F401  (what export's to_fp16 converts with)

        from oppy.export.convert import to_fp16  # export's own conversion; imports no TensorFlow
    except ImportError as exc:
        return None, f"float16 needs onnx and onnxconverter-common (pip install onnxconverter-common): {exc}"
    onnx.save(to_fp16(onnx.load(str(model))), str(out))
    return out, None


def sample_tiles(contract: ModelContract, count: int, overlap: int | None = None) -> np.ndarray:
    """`count` real L tiles [count, T, T, 1] float32 cut from a synthetic frame (repeated as needed)."""
    _, frame = next(synth_frames(1, 256, 256, seed=3))
    plan = plan_tiles(*frame.shape, contract.tile_size, contract.overlap if overlap is None else overlap)
    tiles = cut_tiles(gray_to_l(frame), plan, contract.l_scale, contract.l_shift)
    return np.ascontiguousarray(tiles[np.arange(count) % len(tiles)])


def _provider_options(variant: Variant, workdir: Path) -> list:
    name = PROVIDERS[variant.provider][0]
    options: dict[str, str] = {}
    if variant.provider == "cuda" and variant.cuda_graph:
        options["enable_cuda_graph"] = "1"
    if variant.provider == "cuda" and variant.nhwc:
        options["prefer_nhwc"] = "1"
    if variant.provider == "tensorrt":  # its graph has a fixed batch: one engine for exactly that shape
        options = {"trt_fp16_enable": str(variant.precision == "fp16"), "trt_engine_cache_enable": "True",
                   "trt_engine_cache_path": str(workdir)}
    chosen, _ = choose_providers(variant.provider)
    return [(p, options) if p == name else p for p in chosen]


def open_session(model: Path, variant: Variant, threads: int, workdir: Path) -> ort.InferenceSession:
    """An ONNX Runtime session with the engine's session options and this variant's provider options;
    raises RuntimeError when the wanted provider did not take the graph."""
    wanted = PROVIDERS[variant.provider][0]
    if wanted != "CPUExecutionProvider" and hasattr(ort, "preload_dlls"):
        with contextlib.suppress(Exception):  # as the engine does: CUDA libraries from pip packages
            ort.preload_dlls()
    session = ort.InferenceSession(str(model), session_options(threads),
                                   providers=_provider_options(variant, workdir))
    if session.get_providers()[0] != wanted:
        raise RuntimeError(f"{wanted} did not load (ONNX Runtime fell back to {session.get_providers()[0]}; "
                           "its log above says why)")
    return session


class BoundRun:
    """A session with input and output bound once to fixed buffers of one batch size. `host`: as the engine runs a
    batch, which starts in a numpy array: on a GPU each run copies it in, and the result comes back into host memory
    within the run. `device`: input and output stay in GPU memory (device 0), the model alone. `load(tiles)` puts a
    batch in place; `run()` runs; `output()` copies the result out."""

    def __init__(self, session: ort.InferenceSession, contract: ModelContract, batch: int, binding: str):
        gpu = session.get_providers()[0] != "CPUExecutionProvider"
        tile = contract.tile_size
        self.session = session
        self.host_tiles = np.zeros((batch, tile, tile, 1), np.float32)
        self.input = ort.OrtValue.ortvalue_from_shape_and_type(self.host_tiles.shape, np.float32,
                                                               "cuda" if gpu else "cpu", 0)
        self.result = ort.OrtValue.ortvalue_from_shape_and_type((batch, tile, tile, 2), np.float32,
                                                                "cuda" if binding == "device" else "cpu", 0)
        self.binding = session.io_binding()
        self.binding.bind_ortvalue_input(contract.input_name, self.input)
        if contract.context_input is not None:  # a context input sees the same tiles: the cost is the same
            self.binding.bind_ortvalue_input(contract.context_input, self.input)
        self.binding.bind_ortvalue_output(contract.output_name, self.result)
        self.copy_in = gpu and binding == "host"  # the engine's copy of every batch to the GPU

    def load(self, tiles: np.ndarray) -> None:
        self.host_tiles[...] = tiles
        self.input.update_inplace(self.host_tiles)

    def run(self) -> None:
        # Run returns once the provider's stream is synchronised, so the wall time covers the GPU's work
        if self.copy_in:
            self.input.update_inplace(self.host_tiles)
        self.session.run_with_iobinding(self.binding)

    def output(self) -> np.ndarray:
        return self.result.numpy()


def time_batches(run, warmup: int = 3, repeats: int = 5, min_repeat_seconds: float = 0.05,
                 max_seconds: float = 10.0) -> tuple[float, int]:
    """(median seconds per call of `run`, timed repeats done): `warmup` untimed calls, then up to `repeats`
    timed repeats of enough calls to last `min_repeat_seconds` each, stopping early once `max_seconds` are
    spent (at least one timed repeat is always made)."""
    for _ in range(warmup):
        run()
    start = time.perf_counter()
    run()
    calls = max(1, int(min_repeat_seconds / max(time.perf_counter() - start, 1e-9)))
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < repeats and (not times or time.perf_counter() - began < max_seconds):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times), len(times)


def _variants(providers: list[str], precisions: list[str], cuda_graph: bool, nhwc: bool = False) -> list[Variant]:
    out = []
    for provider in providers:
        for precision in precisions:
            if provider == "cpu":
                out.append(Variant(provider, precision))
            elif provider == "cuda":
                # host buffers with the engine's own CUDA options (channels-last kernels): the engine's way
                out += [Variant(provider, precision, "host", nhwc=True), Variant(provider, precision, "device")]
                if cuda_graph:
                    out.append(Variant(provider, precision, "device", cuda_graph=True))
                if nhwc:
                    out.append(Variant(provider, precision, "device", nhwc=True))
                if cuda_graph and nhwc:
                    out.append(Variant(provider, precision, "device", cuda_graph=True, nhwc=True))
            else:  # TensorRT: only the model's own speed
                out.append(Variant(provider, precision, "device"))
    return out


def _unavailable(provider: str) -> str | None:
    """Why `provider` cannot run here, or None."""
    if provider not in PROVIDERS or provider == "auto":
        return f"unknown provider {provider!r}: choose cpu, cuda or tensorrt"
    chosen, reason = choose_providers(provider)
    if chosen[0] != PROVIDERS[provider][0]:
        return reason or f"{PROVIDERS[provider][0]} is not available"
    return None


def _measure(model: Path, variant: Variant, contract: ModelContract, batch: int, tiles: np.ndarray,
             reference: dict, options: dict, workdir: Path, sessions: dict) -> dict:
    """One row: tiles/s of `variant` at `batch`, and its largest difference from the first row's output at this
    batch (the first provider in float32): a check of float16's error, and that a CUDA graph replays on the data
    loaded after its capture."""
    # On device buffers (the model's own speed) the graph gets this batch as a fixed shape, as a CUDA graph needs
    # and a TensorRT engine is built for: a session each. Host buffers run the engine's graph as it is, batch N.
    key = batch if variant.binding == "device" else None
    if key not in sessions:
        sessions.clear()  # one session at a time: a GPU keeps one model's workspace, not ten
        if key is not None:
            import onnx

            fixed = workdir / f"{model.stem}.batch{batch}.onnx"
            onnx.save(fix_batch(onnx.load(str(model)), batch), str(fixed))
            model = fixed
        sessions[key] = open_session(model, variant, options["threads"], workdir)
    bound = BoundRun(sessions[key], contract, batch, variant.binding)
    bound.load(np.zeros_like(tiles))  # warm-up (and CUDA graph capture) on other data than the timed batch
    for _ in range(max(options["warmup"], 3 if variant.cuda_graph else 1)):
        bound.run()
    bound.load(tiles)
    seconds, repeats = time_batches(bound.run, 0, options["repeats"], options["min_repeat_seconds"],
                                    options["max_seconds"])
    out = bound.output()
    reference.setdefault(batch, out.copy())
    return {"ms_per_batch": 1000 * seconds, "tiles_per_s": batch / seconds, "repeats": repeats,
            "max_abs_vs_first": float(np.abs(out - reference[batch]).max())}


def bench_tiles(model: str | Path, providers: list[str] = ("cpu",), batch_sizes: list[int] = BATCH_SIZES,
                precisions: list[str] = PRECISIONS, cuda_graph: bool = False, repeats: int = 5, warmup: int = 2,
                min_repeat_seconds: float = 0.05, max_seconds: float = 10.0, threads: int = 0,
                nhwc: bool = False) -> dict:
    """Tiles/s of `model` for every provider x precision x batch size (x binding, x CUDA graph, x channels-last
    kernels on CUDA).

    A provider that is not available, a float16 copy that cannot be made, and a variant that fails are rows
    with "status": "skipped" and the reason, never an exception. FLOP/s = tiles/s x FLOPs per tile (from the
    graph, `flops.flops_per_tile`); % of roof where the GPU's datasheet peak is known ("unknown" otherwise:
    a CPU, another GPU).
    """
    model = Path(model)
    from oppy.engine.session import ModelSession

    probe = ModelSession(model, "cpu", 1)
    contract = probe.contract
    probe.close()
    flops = flops_per_tile(model)
    host = machine()
    gpu = host["gpus"][0] if host["gpus"] else None
    peaks = peak_flops(gpu["name"] if gpu else None)
    options = {"threads": threads, "warmup": warmup, "repeats": repeats, "min_repeat_seconds": min_repeat_seconds,
               "max_seconds": max_seconds}
    tiles = sample_tiles(contract, max(batch_sizes))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {"fp32": (model, None)}
        if "fp16" in precisions:
            graphs["fp16"] = fp16_model(model, Path(tmp) / "model.fp16.onnx")
        if "int8" in precisions:
            int8 = precision_copy(Path(model), "int8")
            graphs["int8"] = (int8, None) if int8.is_file() else (
                None, f"no int8 copy beside the model ({int8.name}): oppy-export MODEL MODEL --int8 DATASET")
        reference: dict = {}
        for variant in _variants(list(providers), list(precisions), cuda_graph, nhwc):
            path, why = graphs[variant.precision]
            if variant.provider == "tensorrt":
                path, why = model, None  # TensorRT makes its own float16 engine from the float32 graph
            why = _unavailable(variant.provider) or why
            sessions: dict = {}
            for batch in batch_sizes:
                row = {"provider": variant.provider, "precision": variant.precision, "binding": variant.binding,
                       "cuda_graph": variant.cuda_graph, "nhwc": variant.nhwc, "variant": variant.name,
                       "batch_size": batch}
                if why is None:
                    try:
                        row.update(_measure(path, variant, contract, batch, tiles[:batch], reference, options,
                                            Path(tmp), sessions))
                    except Exception as exc:  # reported in its row: one failing variant must not end the run
                        log.warning("%s at batch %d failed: %s", variant.name, batch, exc)
                        why = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                if "tiles_per_s" in row:
                    row["status"] = "ok"
                    row["flops_per_s"] = row["tiles_per_s"] * flops["flops_per_tile"]
                    roof = peaks and (peaks["fp16"] if variant.precision == "fp16" else peaks["fp32"])
                    row["pct_of_roof"] = 100 * row["flops_per_s"] / roof if roof and variant.provider != "cpu" \
                        else "unknown"
                else:
                    row.update(status="skipped", reason=why)
                rows.append(row)
            sessions.clear()
            if why is not None and all(r["status"] == "skipped" for r in rows if r["variant"] == variant.name):
                log.info("skipped %s: %s", variant.name, why)
    return {"model": str(model), "architecture": contract.info.get("oppy.architecture", "unknown"),
            "flops": flops, "cpu": host["cpu"], "cores": host["cores"], "gpu": gpu, "peak_flops": peaks or "unknown",
            "roof_note": "fp32 rows against the FP32 CUDA-core peak, fp16 rows against the dense FP16 Tensor Core "
                         "peak; ONNX Runtime's CUDA provider may use TF32 Tensor Cores for fp32 convolutions, whose "
                         "dense peak is peak_flops.tf32",
            "onnxruntime": ort.__version__, "rows": rows, "best": best_rows(rows),
            "cuda_graph_speedup": cuda_graph_speedup(rows), "nhwc_speedup": nhwc_speedup(rows),
            "int8_speedup": int8_speedup(rows)}


def int8_speedup(rows: list[dict]) -> dict:
    """Per provider and batch size: tiles/s of the int8 copy over the float32 model's, in the same run."""
    ok = {(r["provider"], r["precision"], r["binding"], r["batch_size"]): r["tiles_per_s"] for r in rows
          if r["status"] == "ok" and not r["cuda_graph"] and not r["nhwc"]}
    return {f"{provider} batch {batch}": rate / ok[(provider, "fp32", binding, batch)]
            for (provider, precision, binding, batch), rate in ok.items()
            if precision == "int8" and (provider, "fp32", binding, batch) in ok}


def best_rows(rows: list[dict]) -> list[dict]:
    """The fastest batch size of each variant."""
    best: dict[str, dict] = {}
    for row in rows:
        if row["status"] == "ok" and row["tiles_per_s"] > best.get(row["variant"], {}).get("tiles_per_s", 0):
            best[row["variant"]] = row
    return list(best.values())


def _over_plain_device_buffers(rows: list[dict], feature: str) -> dict:
    """Per precision and batch size: tiles/s of the CUDA rows with `feature` alone over those of plain device
    buffers."""
    def ok(r: dict) -> bool:
        return r["status"] == "ok" and r["provider"] == "cuda" and r["binding"] == "device"

    def features(r: dict) -> set[str]:
        return {name for name in ("cuda_graph", "nhwc") if r.get(name)}

    plain = {(r["precision"], r["batch_size"]): r["tiles_per_s"] for r in rows if ok(r) and not features(r)}
    return {f"{r['precision']} batch {r['batch_size']}": r["tiles_per_s"] / plain[(r["precision"], r["batch_size"])]
            for r in rows if ok(r) and features(r) == {feature} and (r["precision"], r["batch_size"]) in plain}


def cuda_graph_speedup(rows: list[dict]) -> dict:
    """Per precision and batch size: tiles/s with CUDA graphs over tiles/s on the same device buffers without."""
    return _over_plain_device_buffers(rows, "cuda_graph")


def nhwc_speedup(rows: list[dict]) -> dict:
    """Per precision and batch size: tiles/s with channels-last kernels over tiles/s on device buffers without."""
    return _over_plain_device_buffers(rows, "nhwc")
