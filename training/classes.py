"""Training a classification head (Zhang et al. 2016): a*b* quantised into bins, each pixel's target the bin of its
chroma, the cross-entropy weighted against the bins' frequency so that rare colourful pixels count, and common
grey-brown ones do not drown them (the reason a regression averages towards grey).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import keras
import numpy as np

from .architectures import AB_LIMIT, AB_SCALE, AB_STEP, HEAD_STRIDE, ab_bins
from .data import load_lab

#: the mix of the empirical bin distribution with the uniform one, and the smoothing of the histogram (a*b* units)
REBALANCE_MIX, SMOOTHING_SIGMA = 0.5, 5.0
#: photos the bin distribution is estimated on, at most (spread over the split)
WEIGHT_PHOTOS = 1000

_SIDE = round(2 * AB_LIMIT / AB_STEP) + 1  # bins along each axis


def bin_of(ab: np.ndarray) -> np.ndarray:
    """The bin of each a*, b* pair [..., 2] (a* varying slowest, as `ab_bins`), past the grid's edge its edge."""
    index = np.clip(np.rint((np.asarray(ab, np.float64) + AB_LIMIT) / AB_STEP), 0, _SIDE - 1).astype(np.int64)
    return index[..., 0] * _SIDE + index[..., 1]


def class_weights(files: list[Path], mix: float = REBALANCE_MIX, sigma: float = SMOOTHING_SIGMA) -> np.ndarray:
    """Each bin's weight [Q] float32: 1 / ((1 - mix) * p + mix / Q), p the bins' frequency over the photos' pixels
    (at the head's resolution, 1 / HEAD_STRIDE) smoothed by a Gaussian of `sigma` a*b* units, scaled so the
    expected weight under p is 1."""
    count = len(ab_bins())
    picks = files if len(files) <= WEIGHT_PHOTOS else [files[i] for i in np.linspace(0, len(files) - 1, WEIGHT_PHOTOS)
                                                           .round().astype(int)]
    histogram = np.zeros(count)
    for path in picks:
        lab = load_lab(path)
        small = cv2.resize(lab, (max(1, lab.shape[1] // HEAD_STRIDE), max(1, lab.shape[0] // HEAD_STRIDE)),
                           interpolation=cv2.INTER_AREA)
        histogram += np.bincount(bin_of(small[..., 1:]).ravel(), minlength=count)
    grid = cv2.GaussianBlur(histogram.reshape(_SIDE, _SIDE), (0, 0), sigma / AB_STEP, borderType=cv2.BORDER_CONSTANT)
    p = grid.ravel() / max(grid.sum(), 1e-12)
    weights = 1.0 / ((1 - mix) * p + mix / count)
    return (weights / (p * weights).sum()).astype(np.float32)


def rebalanced_cross_entropy(weights: np.ndarray):
    """The loss of a classification head: `y_true` the ab tiles [B, T, T, 2] (/ AB_SCALE), `logits` [B, T/S, T/S, Q]
    (S = HEAD_STRIDE); each logit's target is the bin of the mean chroma of its S x S pixels, its cross-entropy
    weighted by that bin's `weights`."""
    table = keras.ops.convert_to_tensor(weights)

    @keras.saving.register_keras_serializable(package="oppy")
    def rebalanced_ce(y_true, logits):
        pooled = keras.ops.average_pool(y_true * AB_SCALE, HEAD_STRIDE, strides=HEAD_STRIDE)
        index = keras.ops.clip(keras.ops.round((pooled + AB_LIMIT) / AB_STEP), 0, _SIDE - 1)
        target = keras.ops.cast(index[..., 0] * _SIDE + index[..., 1], "int32")
        entropy = keras.ops.sparse_categorical_crossentropy(target, logits, from_logits=True)
        return keras.ops.mean(entropy * keras.ops.take(table, target))

    return rebalanced_ce
