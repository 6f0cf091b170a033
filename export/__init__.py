"""oppy-stream's export: Keras model to ONNX with the engine's model contract in its metadata.

The public face is `export_model` with its options `ExportOptions`; problems a user can fix raise the engine's
`OppyError` family (`ModelError` for a network that cannot be read, converted or matched).
"""

import importlib

_PUBLIC = {"ExportOptions": ".convert", "export_model": ".convert"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    # imported when first used, so that the layers training builds from (`layers`) come without tf2onnx and ONNX
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
