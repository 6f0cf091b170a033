"""The ONNX Runtime session: provider choice with an announced fallback, the model contract, fixed batches.

One `ModelSession` owns one `onnxruntime.InferenceSession`. It reads the model contract from the model's
metadata, checks the graph's inputs and outputs against it, and runs full batches through I/O binding.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import logging
import os
import stat
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .config import PRECISIONS, PROVIDERS, physical_memory
from .contract import ModelContract
from .errors import ModelError, OppyError, one_line
from .frames import display_name

log = logging.getLogger(__name__)
ort.disable_telemetry_events()  # and no telemetry events from sessions (ORT_DISABLE_TELEMETRY: see __init__)

_GPU_PROVIDERS = {"TensorrtExecutionProvider", "CUDAExecutionProvider"}


def cuda_driver_present() -> bool:
    """Whether this machine has an NVIDIA driver at all (a GPU provider cannot load without one)."""
    return ctypes.util.find_library("cuda") is not None or os.path.exists("/dev/nvidia0")


def _provider_options(name: str) -> dict[str, str]:
    if name == "TensorrtExecutionProvider":
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oppy-stream" / "tensorrt"
        return {"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache)}
    if name == "CUDAExecutionProvider":
        # channels-last convolution kernels: fewer layout transposes (`oppy-bench tiles --nhwc`)
        return {"prefer_nhwc": "1"}
    return {}


def precision_copy(model: Path, precision: str) -> Path:
    """`model.onnx` -> `model.PRECISION.onnx`, beside it: where `oppy-export` writes a copy in another precision."""
    return model.with_name(f"{model.stem}.{precision}{model.suffix}")


def _exists(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for a copy's suffix, a folder without access: no copy there
        return False


def choose_precision(model: Path, precision: str, provider: str) -> tuple[Path, str]:
    """The file to run and its precision: `model` itself for fp32; its fp16 or int8 copy where asked (a
    `ModelError` naming the export that writes it where there is none); for auto, the int8 copy where the CPU
    provider runs and the fp16 copy where a GPU provider does, if there is one, else `model` itself."""
    if precision not in PRECISIONS:
        raise OppyError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "fp32":
        return model, "fp32"
    if precision == "auto":
        chosen, _ = choose_providers(provider)
        precision = "fp16" if chosen and chosen[0] in _GPU_PROVIDERS else "int8"
        copy = precision_copy(model, precision)
        return (copy, precision) if _exists(copy) else (model, "fp32")
    copy = precision_copy(model, precision)
    if not _exists(copy):
        raise ModelError(f"--precision {precision}: '{display_name(str(model))}' has no {precision} copy (no "
                         f"'{copy.name}' beside it): write one with oppy-export MODEL.onnx MODEL.onnx --{precision}"
                         f"{' DATASET' if precision == 'int8' else ''}, or run --precision fp32")
    return copy, precision


def choose_providers(provider: str) -> tuple[list[str], str | None]:
    """The providers to ask ONNX Runtime for, in order, and why any wanted one was left out."""
    if provider not in PROVIDERS:
        raise OppyError(f"unknown provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
    wanted = list(PROVIDERS[provider])
    available = set(ort.get_available_providers())
    reasons = [f"{name} is not in this onnxruntime build" for name in wanted if name not in available]
    chosen = [name for name in wanted if name in available]
    if _GPU_PROVIDERS & set(chosen) and not cuda_driver_present():
        reasons.append("no NVIDIA driver on this machine")
        chosen = [name for name in chosen if name not in _GPU_PROVIDERS]
    return chosen, "; ".join(reasons) or None


def session_options(threads: int) -> ort.SessionOptions:
    """The engine's ONNX Runtime session options: all graph optimizations, `threads` intra-op threads."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning worker threads would steal the cores the other pipeline stages need between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


#: batches whose arrays may be alive at once: the session's own, the one being cut, those queued and being blended
BATCHES_IN_MEMORY = 4


#: the network's own working memory a 64x64 tile, in ONNX Runtime on the CPU: the packaged model's peak resident
#: memory grew by 0.61 MB a tile from a batch of 2,048 to one of 4,096 (a context model needs more: its input is
#: a third larger)
RUNTIME_BYTES_PER_TILE = 640 * 2**10


def check_batch_fits(batch_size: int, tile: int, context: bool = False) -> None:
    """Refuse a batch of `batch_size` tiles of `tile` px that this machine cannot hold: the arrays (L in, a*b* out,
    and a context input's, float32) `BATCHES_IN_MEMORY` times over, and the network's working memory for one."""
    scale = (tile / 64) ** 2 * (4 / 3 if context else 1)
    per_tile = round(tile * tile * (4 if context else 3) * 4 * BATCHES_IN_MEMORY + RUNTIME_BYTES_PER_TILE * scale)
    needed = batch_size * per_tile
    memory = physical_memory()
    if memory is not None and needed > memory:
        raise OppyError(f"a batch of {batch_size} tiles of {tile}x{tile} px needs {needed / 2**30:.3g} GiB of "
                        f"arrays, more than this machine's {memory / 2**30:.3g} GiB (the tiles in and out and the "
                        f"network's working memory): pass a smaller --batch-size "
                        f"(at most {max(1, memory // per_tile)})")


def _model_source(path: Path) -> str | bytes:
    """What ONNX Runtime loads the model from: its path where the name is valid UTF-8 (external weights beside it
    are then found), else its bytes (ONNX Runtime takes paths as UTF-8 only)."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read the model '{display_name(name)}': {exc.strerror or exc}") from exc
    return name


def check_model_file(path: Path) -> None:
    """A `ModelError` saying what is at `path` where it is not a regular file a model can be read from (nothing, a
    folder, a named pipe that would block the load, a device), before ONNX Runtime opens it."""
    name = display_name(str(path))
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ModelError(f"model file '{name}' not found: pass the path of an exported .onnx model") from None
    except OSError as exc:
        raise ModelError(f"model file '{name}': {exc.strerror or exc}: pass the path of an exported .onnx "
                         "model") from None
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "not a regular file")
        raise ModelError(f"model '{name}' is {kind}, not a model file: pass the path of an exported .onnx model")


def _dims_match(dims: list, expected: tuple) -> bool:
    if len(dims) != len(expected):
        return False
    return all(not isinstance(d, int) or e is None or d == e for d, e in zip(dims, expected, strict=True))


class ModelSession:
    """A colourising model loaded for inference: `run(batch)` maps L tiles to ab tiles.

    batch_size is fixed: every call of `run` takes exactly that many tiles, so accelerators see one shape.
    """

    def __init__(self, model: str | Path, provider: str = "auto", batch_size: int = 256, threads: int = 0):
        path = Path(model)
        check_model_file(path)
        chosen, reason = choose_providers(provider)
        if _GPU_PROVIDERS & set(chosen) and hasattr(ort, "preload_dlls"):
            with contextlib.suppress(Exception):
                ort.preload_dlls()
        source = _model_source(path)
        try:
            self._session = ort.InferenceSession(
                source, session_options(threads),
                providers=[(name, _provider_options(name)) for name in chosen],
            )
        except Exception as exc:  # onnxruntime raises several unrelated types for a bad file
            raise ModelError(f"'{display_name(str(path))}' is not a loadable ONNX model: {one_line(str(exc))}") from exc
        self.path = path
        self.contract = ModelContract.from_metadata(
            self._session.get_modelmeta().custom_metadata_map, source=f"'{display_name(str(path))}'"
        )
        self.batch_size = batch_size
        self._check_graph()
        # announced only for a usable model, so that a refused one gives exactly one message
        self.provider = self._session.get_providers()[0]
        self.fallback = None
        if self.provider != PROVIDERS[provider][0]:
            why = reason or f"{chosen[0]} failed to load (see onnxruntime's message above)"
            self.fallback = f"{PROVIDERS[provider][0]} unavailable ({why}); using {self.provider}"
            if provider == "auto":
                log.info("provider: %s", self.fallback)
            else:
                log.warning("provider %r: %s", provider, self.fallback)
        tile = self.contract.tile_size
        check_batch_fits(batch_size, tile, self.contract.context_input is not None)
        self._input = np.zeros((batch_size, tile, tile, 1), np.float32)
        self._output = np.empty((batch_size, tile, tile, 2), np.float32)
        self._binding = self._session.io_binding()
        # On a GPU, a host input is copied to the device when it is bound, not at each run: the input lives on the
        # device and each run copies the batch in. The output is bound to host memory on every provider: on a GPU
        # ONNX Runtime copies the result into it within the run, which holds no GIL (a copy from a device OrtValue
        # would hold it). On the CPU, OrtValues over numpy arrays share their memory: nothing is copied.
        self._device_input = None
        bound_input = ort.OrtValue.ortvalue_from_numpy(self._input)
        if self.provider in _GPU_PROVIDERS:
            bound_input = self._device_input = ort.OrtValue.ortvalue_from_shape_and_type(
                self._input.shape, np.float32, "cuda", 0)
        self._binding.bind_ortvalue_input(self.contract.input_name, bound_input)
        self._binding.bind_ortvalue_output(self.contract.output_name, ort.OrtValue.ortvalue_from_numpy(self._output))
        self._bound = (self._input, self._output)  # the host arrays the binding reads (on the CPU) and writes
        #: a context input's batch, where the model has one (bound at each run: it is cut with its tiles)
        self._context = np.zeros_like(self._input) if self.contract.context_input is not None else None

    def _check_graph(self) -> None:
        contract, tile = self.contract, self.contract.tile_size
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        where = f"'{display_name(str(self.path))}'"
        if contract.input_name not in inputs or contract.output_name not in outputs:
            raise ModelError(
                f"{where} declares input {contract.input_name!r} and output {contract.output_name!r}, but the "
                f"graph has inputs {sorted(inputs)} and outputs {sorted(outputs)}: re-export the model"
            )
        if (contract.context_input is not None) != (len(inputs) == 2) or len(inputs) > 2 or (
                contract.context_input is not None and contract.context_input not in inputs):
            raise ModelError(
                f"{where} declares context input {contract.context_input!r}, but the graph has inputs "
                f"{sorted(inputs)}: a model takes its tiles, and a context input only where it declares one"
            )
        nodes = [(inputs[contract.input_name], 1), (outputs[contract.output_name], 2)]
        if contract.context_input is not None:
            nodes.append((inputs[contract.context_input], 1))
        for node, channels in nodes:
            if node.type != "tensor(float)" or not _dims_match(node.shape, (None, tile, tile, channels)):
                raise ModelError(
                    f"{where}: tensor {node.name!r} is {node.type} {node.shape}; the contract wants float32 "
                    f"[N, {tile}, {tile}, {channels}]"
                )
        for name in filter(None, (contract.input_name, contract.context_input)):
            batch_dim = inputs[name].shape[0]
            if isinstance(batch_dim, int) and batch_dim != self.batch_size:
                raise ModelError(f"{where} has a fixed batch of {batch_dim} (input {name!r}): use batch size "
                                 f"{batch_dim}")

    @property
    def input_buffer(self) -> np.ndarray:
        """The bound input batch [batch_size, tile, tile, 1] float32: fill it, then call `run()`."""
        return self._input

    @property
    def context_buffer(self) -> np.ndarray | None:
        """A model with a context input: a context batch the size of `input_buffer` to fill and pass to `run`."""
        return self._context

    def run(self, batch: np.ndarray | None = None, out: np.ndarray | None = None,
            context: np.ndarray | None = None) -> np.ndarray:
        """Run the model on `batch` (C-contiguous float32 [batch_size, tile, tile, 1]; default `input_buffer`)
        into `out` (C-contiguous float32 [batch_size, tile, tile, 2]; default the session's own array, which the
        next call overwrites); returns the array written. A model with a context input also takes `context`, the
        batch's context tiles (as `batch`; `engine.context`).

        Arrays of one's own cost no copy on the CPU (the session reads and writes them in place) and one copy each
        way on a GPU, where filling `input_buffer` first would cost one more. Reusing them spares the page faults
        of fresh memory (about 5 ms for a 1024-tile output on the CPU).
        """
        if self._session is None:
            raise ValueError(f"the session of '{display_name(str(self.path))}' is closed: create a new Engine to go on")
        batch = self._input if batch is None else batch
        output = self._output if out is None else out
        if (context is None) != (self._context is None):
            raise ValueError("this model takes a context input: pass context=" if context is None else
                             "this model has no context input: pass no context")
        checked = (("the batch", batch, self._input), ("its output", output, self._output),
                   *((("its context", context, self._input),) if context is not None else ()))
        for what, array, like in checked:
            if array.shape != like.shape or array.dtype != np.float32 or not array.flags.c_contiguous:
                raise ValueError(f"{what} must be C-contiguous float32 {like.shape}, not {array.dtype} {array.shape}")
        if context is not None:  # copied to the device by ONNX Runtime on a GPU, read in place on the CPU
            self._binding.bind_ortvalue_input(self.contract.context_input, ort.OrtValue.ortvalue_from_numpy(context))
        if self._device_input is not None:
            self._device_input.update_inplace(batch)
        elif batch is not self._bound[0]:
            self._binding.bind_ortvalue_input(self.contract.input_name, ort.OrtValue.ortvalue_from_numpy(batch))
        if output is not self._bound[1]:
            self._binding.bind_ortvalue_output(self.contract.output_name, ort.OrtValue.ortvalue_from_numpy(output))
        self._bound = (batch, output)
        try:
            self._session.run_with_iobinding(self._binding)
        except Exception as exc:  # onnxruntime raises several unrelated types from inside a graph
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"the model '{display_name(str(self.path))}' failed in ONNX Runtime on a batch of "
                             f"{len(batch)} tiles: {first_line}; check that it takes any batch size (or pass its "
                             "own with --batch-size), or re-export it with oppy-export") from exc
        return output

    def predict(self, tiles: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
        """Any number of L tiles [n, tile, tile, 1] (and their `context` tiles, where the model takes them) ->
        raw model output [n, tile, tile, 2], in full batches."""
        if context is not None and self._context is None:
            raise ValueError("this model has no context input: pass no context")
        if context is not None and context.shape != tiles.shape:
            raise ValueError(f"the context must have the tiles' shape {tiles.shape}, not {context.shape}")
        out = np.empty((*tiles.shape[:3], 2), np.float32)
        for start in range(0, len(tiles), self.batch_size):
            chunk = tiles[start : start + self.batch_size]
            self._input[: len(chunk)] = chunk
            self._input[len(chunk) :] = 0.0
            if context is not None:
                self._context[: len(chunk)] = context[start : start + self.batch_size]
                self._context[len(chunk) :] = 0.0
            out[start : start + len(chunk)] = self.run(context=self._context if context is not None else None
                                                       )[: len(chunk)]
        return out

    @property
    def closed(self) -> bool:
        return self._session is None

    def close(self) -> None:
        """Release the session and its I/O binding; `run()` raises afterwards. Closing twice is harmless."""
        self._binding = None
        self._device_input = None
        self._bound = (None, None)
        self._session = None
