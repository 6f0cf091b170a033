"""oppy-stream's engine: greyscale frames in, colour frames and video out, pipelined on ONNX Runtime.

The public face is `Engine`, its options `EngineConfig`, and the `OppyError` family.
"""

from .config import EngineConfig
from .engine import Engine
from .errors import ModelError, NothingToRender, OppyError
from .render import RenderReport

__all__ = ["Engine", "EngineConfig", "ModelError", "NothingToRender", "OppyError", "RenderReport"]
