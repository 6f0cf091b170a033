"""oppy-stream's export: Keras model to ONNX with the engine's model contract in its metadata."""
