"""oppy-stream's engine: greyscale frames in, colour frames and video out, pipelined on ONNX Runtime.

The public face is `Engine`, its options `EngineConfig`, and the `OppyError` family.
"""

import os

# ONNX Runtime (1.29 and later) writes a telemetry database with a device id under ~/.cache/Microsoft, and a
# session file in the temp folder, as soon as it is imported: a colouriser has no reason to. This is set before
# anything of the engine imports it; a program that imported it earlier has to set it itself.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from .config import EngineConfig
from .engine import Engine
from .errors import ModelError, NothingToRender, OppyError
from .render import RenderReport

__all__ = ["Engine", "EngineConfig", "ModelError", "NothingToRender", "OppyError", "RenderReport"]
