"""torchvision's standard datasets (MNIST, Fashion-MNIST, CIFAR-10) from a local root folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlstudio.core.data.dataset import LabeledTensors
from dlstudio.core.data.errors import DataError
from dlstudio.core.data.images import fit_images, image_input_shape

# name -> (torchvision class name, folder torchvision looks in under the root, files it expects there)
STANDARD_DATASETS: dict[str, tuple[str, str, str]] = {
    "mnist": ("MNIST", "MNIST/raw", "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
              "t10k-labels-idx1-ubyte (or their .gz)"),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST/raw", "train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                      "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (or their .gz)"),
    "cifar10": ("CIFAR10", "", "cifar-10-python.tar.gz or its extracted cifar-10-batches-py folder"),
}


def _open(factory: Callable[..., Any], root: Path, train: bool, allow_download: bool) -> Any:
    try:
        return factory(str(root), train=train, download=False)
    except RuntimeError:
        if not allow_download:
            raise
    return factory(str(root), train=train, download=True)


def _to_tensors(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
    data = dataset.data
    data = torch.from_numpy(np.asarray(data)) if not isinstance(data, torch.Tensor) else data
    images = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)  # CIFAR is stored N, H, W, C
    return images.float().div_(255.0), torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)


def load_standard(name: str, root: Path, input_shape: tuple[int, ...], *,
                  allow_download: bool = True) -> LabeledTensors:
    """Load ``name`` (mnist, fashion-mnist, cifar10) from ``root``, downloading it there when allowed and online.

    The official test images come last and are marked in ``fixed_test``.
    """
    if name not in STANDARD_DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(STANDARD_DATASETS)}")
    shape = image_input_shape(input_shape, f"the {name} dataset")
    class_name, folder, files = STANDARD_DATASETS[name]
    from torchvision import datasets

    factory = getattr(datasets, class_name)
    try:
        train = _open(factory, root, True, allow_download)
        test = _open(factory, root, False, allow_download)
    except Exception as error:  # noqa: BLE001 - offline downloads fail with URLError, OSError, RuntimeError...
        where = root / folder if folder else root
        raise DataError(f"{name} is not in {str(where)!r} and could not be downloaded "
                        f"({type(error).__name__}); put {files} there") from None
    x_train, y_train = _to_tensors(train)
    x_test, y_test = _to_tensors(test)
    x = fit_images(torch.cat([x_train, x_test]), shape)
    fixed_test = torch.zeros(len(x), dtype=torch.bool)
    fixed_test[len(x_train):] = True
    return LabeledTensors(x, torch.cat([y_train, y_test]), list(train.classes), fixed_test=fixed_test)
