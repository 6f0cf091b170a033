"""The numeric work on arrays (Numba and OpenCV): L and RGB, YUV, tiles and their blend, a tile's context,
chroma at the model's scale, resizing. Kernels import nothing else of the engine."""
