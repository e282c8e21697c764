"""scikit-learn's bundled 8x8 handwritten digits: 1,797 real images, offline and instant."""

from __future__ import annotations

import numpy as np
import torch

from dlstudio.core.data.dataset import LabeledTensors
from dlstudio.core.data.images import fit_images, image_input_shape


def load_digits(input_shape: tuple[int, ...]) -> LabeledTensors:
    """The digits as images fitted to ``input_shape`` ([C, H, W]), values in [0, 1]."""
    from sklearn.datasets import load_digits as sklearn_digits

    shape = image_input_shape(input_shape, "the digits dataset")
    bunch = sklearn_digits()
    # Pixel values are counts 0..16 of an original 32x32 bitmap's 4x4 blocks.
    images = torch.from_numpy((bunch.images / 16.0).astype(np.float32)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return LabeledTensors(fit_images(images, shape), labels, [str(i) for i in range(10)])
