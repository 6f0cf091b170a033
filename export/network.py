"""A trained Keras network as export sees it: loaded from a run of `oppy-train fit`, its tile, its ab answer.

Keras is imported only to load one, so that the command's options and the parity check's constants stay light.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from oppy.engine.errors import ModelError

RUN_SUMMARY = "run.json"  # written by `oppy-train fit` beside its model.keras


def load_network(source: str | Path):
    """A run directory (`model.keras` inside) or a .keras file -> (Keras network, its run directory or None).

    A .keras file's folder counts as its run directory when it holds a run.json."""
    path = Path(source)
    keras_file = path / "model.keras" if path.is_dir() else path
    run_dir = path if path.is_dir() else (path.parent if (path.parent / RUN_SUMMARY).is_file() else None)
    if not keras_file.is_file():
        raise ModelError(f"no Keras model at {str(keras_file)!r}: give a run directory of `oppy-train fit` "
                         "or a .keras file")
    import keras

    from . import layers  # noqa: F401 (registers the layers a network may hold, for loading)

    try:
        network = keras.models.load_model(keras_file, compile=False)
    except Exception as exc:  # keras raises several unrelated types for a bad archive
        raise ModelError(f"{str(keras_file)!r} is not a loadable Keras model: {exc}") from exc
    inputs = [tuple(shape) for shape in (network.input_shape if isinstance(network.input_shape, list)
                                         else [network.input_shape])]
    outputs = network.output_shape
    shapes = outputs if isinstance(outputs, dict) else dict(zip(network.output_names, outputs, strict=True)) \
        if isinstance(outputs, list) else {"ab": outputs}
    ab_shape = tuple(shapes.get("ab") or ()) if len(shapes) > 1 else tuple(next(iter(shapes.values())))
    tile = inputs[0][1]
    if len(inputs) > 2 or any(shape != (None, tile, tile, 1) for shape in inputs) or ab_shape != (None, tile, tile, 2):
        raise ModelError(f"{str(keras_file)!r} maps {network.input_shape} to {outputs}; a colouriser maps L tiles "
                         "[N, T, T, 1] (and a context input of the same shape) to ab tiles [N, T, T, 2]")
    return network, run_dir


def network_tile(network) -> int:
    """The tile edge a network takes."""
    shape = network.input_shape[0] if isinstance(network.input_shape, list) else network.input_shape
    return shape[1]


def keras_ab(network, tiles: np.ndarray, context: np.ndarray | None = None):
    """The network's "ab" answer for a batch (a classification head answers its logits too)."""
    out = network(tiles if context is None else [tiles, context], training=False)
    if isinstance(out, dict):
        return out["ab"]
    return out[network.output_names.index("ab")] if isinstance(out, (list, tuple)) else out


def keras_predict(network, tiles: np.ndarray, batch_size: int = 64, context: np.ndarray | None = None) -> np.ndarray:
    """The Keras network's raw ab output for `tiles` (and their `context`), in inference mode, float32."""
    return np.concatenate([np.asarray(keras_ab(network, tiles[i : i + batch_size],
                                               None if context is None else context[i : i + batch_size]), np.float32)
                           for i in range(0, len(tiles), batch_size)])
