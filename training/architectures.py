"""The colourising networks, built by name: `seed` (the original), `unet` (the default) and its variants with a
context input (`-context`: the L around the tile over a window 4 tiles wide) and a classification head (`-classes`).

All map L tiles [N, 64, 64, 1] (scaled by the model contract) to ab tiles [N, 64, 64, 2] in [-1, 1] (their output
"ab"); a classification head also gives its logits over a*b* bins ("logits"), which it is trained on, and decodes
them into ab inside the network (the annealed mean of Zhang et al. 2016), so an exported model still answers ab.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import keras
import numpy as np
from keras import layers

from oppy.export.layers import AnnealedMean

TILE = 64
#: the window of a context input, in tiles
CONTEXT_FACTOR = 4
#: a*b* bins of a classification head: a grid of AB_STEP over [-AB_LIMIT, AB_LIMIT] on each axis (Mars colours
#: lie well inside; chroma past the limit goes to the edge bins), and the annealed mean's temperature
AB_STEP, AB_LIMIT, TEMPERATURE = 10.0, 60.0, 0.38
#: a classification head predicts one bin distribution per HEAD_STRIDE x HEAD_STRIDE pixels of the tile (16x16 of a
#: 64 px tile): its logits are bins x positions floats, and at 32x32 with 289 bins they made the model 5.3x slower
#: per tile and a 1024x1024 render 2x slower (`oppy-bench engine`, untrained weights), past the 1.5x a default may cost
HEAD_STRIDE = 4
#: a*, b* are stored as value / AB_SCALE (the contract's ab_scale)
AB_SCALE = 128.0


def ab_bins() -> np.ndarray:
    """The a*, b* centre of each bin [Q, 2] float32, a varying slowest."""
    axis = np.arange(-AB_LIMIT, AB_LIMIT + AB_STEP / 2, AB_STEP, dtype=np.float32)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def _conv(x, filters: int, strides: int = 1, activation: str = "relu"):
    return layers.Conv2D(filters, 3, strides=strides, padding="same", activation=activation)(x)


def seed(tile: int = TILE) -> keras.Model:
    """The original plain encoder/decoder, layer for layer: 3,892,194 parameters at 64x64x1."""
    inputs = keras.Input((tile, tile, 1), name="L")
    x = _conv(inputs, 64)
    x = _conv(x, 64, 2)
    x = _conv(x, 128)
    x = _conv(x, 128, 2)
    x = _conv(x, 256)
    x = _conv(x, 256, 2)
    x = _conv(x, 512)
    x = _conv(x, 256)
    x = _conv(x, 128)
    x = layers.UpSampling2D(2)(x)
    x = _conv(x, 64)
    x = layers.UpSampling2D(2)(x)
    x = _conv(x, 32)
    x = _conv(x, 2, activation="tanh")
    outputs = layers.UpSampling2D(2, name="ab")(x)
    return keras.Model(inputs, outputs, name="seed")


def unet(tile: int = TILE, width: int = 24, context: bool = False, classes: bool = False) -> keras.Model:
    """A small U-Net for speed on CPU and GPU alike: no full-resolution convolution at all.

    A stride-2 stem goes straight to 32x32; the encoder goes down to 8x8 and a decoder with skip connections
    comes back to 32x32, where chroma is predicted; a bilinear 2x upsampling gives the 64x64 output, since
    chroma is low-frequency (the engine recombines it with full-resolution L). 0.13 GFLOP per tile, 13.6% of
    the seed's.

    `context`: a second input "context" (the L around the tile, `CONTEXT_FACTOR` tiles wide, at the tile's size)
    runs through an encoder of its own down to 8x8, joined to the tile's at the bottleneck, so that each tile's
    decision knows its scene. `classes`: the decoder stops at 16x16, where a layer gives logits over `ab_bins()`
    ("logits"), decoded by `AnnealedMean` into "ab" and grown 4x bilinearly.
    """
    tile_input = keras.Input((tile, tile, 1), name="L")
    s32 = _conv(_conv(tile_input, width, 2), width)  # 32x32
    s16 = _conv(_conv(s32, 2 * width, 2), 2 * width)  # 16x16
    s8 = _conv(_conv(s16, 4 * width, 2), 4 * width)  # 8x8
    inputs = tile_input
    if context:
        context_input = keras.Input((tile, tile, 1), name="context")
        c = _conv(_conv(_conv(context_input, width, 2), 2 * width, 2), 4 * width, 2)  # 8x8: the scene
        s8 = _conv(layers.Concatenate()([s8, c]), 4 * width)
        inputs = [tile_input, context_input]
    x = _conv(s8, 4 * width)
    x = layers.UpSampling2D(2)(x)  # nearest inside the decoder: convolutions follow, and it trains 25% faster
    x = _conv(layers.Concatenate()([x, s16]), 2 * width)
    x = _conv(x, 2 * width)
    name = "unet" + ("-context" if context else "") + ("-classes" if classes else "")
    if classes:  # at 16x16 (HEAD_STRIDE), grown 4x bilinearly
        logits = layers.Conv2D(len(ab_bins()), 1, name="logits")(x)
        decoded = AnnealedMean(ab_bins() / AB_SCALE, TEMPERATURE)(logits)
        ab = layers.UpSampling2D(HEAD_STRIDE, interpolation="bilinear", name="ab")(decoded)
        return keras.Model(inputs, {"ab": ab, "logits": logits}, name=name)
    x = layers.UpSampling2D(2)(x)
    x = _conv(layers.Concatenate()([x, s32]), width)
    x = layers.Conv2D(2, 3, padding="same", activation="tanh")(x)
    outputs = layers.UpSampling2D(2, interpolation="bilinear", name="ab")(x)
    return keras.Model(inputs, outputs, name=name)


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "seed": seed, "unet": unet,
    "unet-context": functools.partial(unet, context=True),
    "unet-classes": functools.partial(unet, classes=True),
    "unet-context-classes": functools.partial(unet, context=True, classes=True),
}


def uses_context(name: str) -> bool:
    """Whether the architecture takes a context input."""
    return "context" in name


def uses_classes(name: str) -> bool:
    """Whether the architecture has a classification head (trained on its "logits" output)."""
    return name.endswith("classes")


def build(name: str, tile: int = TILE) -> keras.Model:
    """The architecture registered under `name`."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}: choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](tile)


def conv_flops(model: keras.Model) -> int:
    """Multiply-adds x 2 of the model's convolutions for one tile (the rest is negligible)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, height, width, out_channels = layer.output.shape
            kh, kw, in_channels, _ = layer.kernel.shape
            total += 2 * height * width * out_channels * kh * kw * in_channels
    return total
