"""oppy-stream's export: Keras model to ONNX with the engine's model contract in its metadata.

The public face is `export_model` with its options `ExportOptions`; problems a user can fix raise the engine's
`OppyError` family (`ModelError` for a network that cannot be read, converted or matched).
"""

from .convert import ExportOptions, export_model

__all__ = ["ExportOptions", "export_model"]
