"""oppy-stream's engine: greyscale frames in, colour frames and video out, pipelined on ONNX Runtime.

The public face is `Engine`, its options `EngineConfig`, and the `OppyError` family. They are imported when first
used, so that importing one light module of the engine (the command's launcher) does not load ONNX Runtime,
Numba and PyAV.
"""

import importlib
import os

# ONNX Runtime (1.29 and later) writes a telemetry database with a device id under ~/.cache/Microsoft, and a
# session file in the temp folder, as soon as it is imported: a colouriser has no reason to. This is set before
# anything of the engine imports it; a program that imported it earlier has to set it itself.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

_PUBLIC = {"Engine": ".api", "EngineConfig": ".config", "ModelError": ".errors", "NothingToRender": ".errors",
           "OppyError": ".errors", "RenderReport": ".render"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
