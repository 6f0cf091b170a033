"""Keras layers a colouriser may hold that Keras itself lacks, registered for loading and exported as plain ops.

`oppy-export` loads any run of `oppy-train fit` with these registered; training builds its networks from them.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

#: the bins of networks saved before a layer's config carried its centres: the 13 x 13 grid of 10 over +-60 they were
#: built with (a* varying slowest), in the contract's units (/ 128), and their temperature; an earlier trial's 17 x 17
#: grid (8 over +-64) was never packaged: its files load but cannot run (169 centres for 289 logits)
LEGACY_CENTRES = np.stack(np.meshgrid(*[np.arange(-60.0, 61.0, 10.0)] * 2, indexing="ij"), -1).reshape(-1, 2) / 128
LEGACY_TEMPERATURE = 0.38


@keras.saving.register_keras_serializable(package="oppy")
class AnnealedMean(layers.Layer):
    """Logits over Q bins [..., Q] -> [..., 2]: the mean of the bins' `centres` [Q, 2] (in the output's units)
    under the softmax of logits / `temperature` (below 1: sharper than the mean, less grey; above the mode's
    blockiness), Zhang et al. 2016's annealed mean. It decodes a classification head into ab inside the graph."""

    def __init__(self, centres, temperature: float, **kwargs):
        super().__init__(**kwargs)
        self.temperature = float(temperature)
        # numpy: a constant of the traced graph, not a captured tensor
        self.centres = np.asarray(centres, np.float32).reshape(-1, 2)

    def call(self, logits):
        weights = keras.ops.softmax(logits / self.temperature, axis=-1)
        return keras.ops.tensordot(weights, keras.ops.convert_to_tensor(self.centres), axes=[[-1], [0]])

    def get_config(self) -> dict:
        return {**super().get_config(), "centres": self.centres.tolist(), "temperature": self.temperature}

    @classmethod
    def from_config(cls, config: dict) -> AnnealedMean:
        return cls(**{"centres": LEGACY_CENTRES, "temperature": LEGACY_TEMPERATURE, **config})
