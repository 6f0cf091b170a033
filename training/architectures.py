"""The colourising networks, built by name: `seed` (the original) and `unet` (the default).

Both map L tiles [N, 64, 64, 1] (scaled by the model contract) to ab tiles [N, 64, 64, 2] in [-1, 1] (tanh).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

TILE = 64


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


def unet(tile: int = TILE, width: int = 24) -> keras.Model:
    """A small U-Net for speed on CPU and GPU alike: no full-resolution convolution at all.

    A stride-2 stem goes straight to 32x32; the encoder goes down to 8x8 and a decoder with skip connections
    comes back to 32x32, where chroma is predicted; a bilinear 2x upsampling gives the 64x64 output, since
    chroma is low-frequency (the engine recombines it with full-resolution L). 0.13 GFLOP per tile, 13.6% of
    the seed's.
    """
    inputs = keras.Input((tile, tile, 1), name="L")
    s32 = _conv(_conv(inputs, width, 2), width)  # 32x32
    s16 = _conv(_conv(s32, 2 * width, 2), 2 * width)  # 16x16
    s8 = _conv(_conv(s16, 4 * width, 2), 4 * width)  # 8x8
    x = _conv(s8, 4 * width)
    x = layers.UpSampling2D(2)(x)  # nearest inside the decoder: convolutions follow, and it trains 25% faster
    x = _conv(layers.Concatenate()([x, s16]), 2 * width)
    x = _conv(x, 2 * width)
    x = layers.UpSampling2D(2)(x)
    x = _conv(layers.Concatenate()([x, s32]), width)
    x = layers.Conv2D(2, 3, padding="same", activation="tanh")(x)
    outputs = layers.UpSampling2D(2, interpolation="bilinear", name="ab")(x)
    return keras.Model(inputs, outputs, name="unet")


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {"seed": seed, "unet": unet}
DEFAULT_ARCHITECTURE = "unet"


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
