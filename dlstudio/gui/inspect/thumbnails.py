"""Small images for the inspect views: numpy raw images to QImage, QImage to numpy, crisp enlargement.

Model inputs are often tiny (8x8 digits, 28x28 MNIST); they are enlarged
with nearest-neighbour sampling so that the pixels the model saw stay
visible instead of being smeared. Larger pictures are reduced smoothly.
No torch here: these run on the GUI thread and in worker jobs alike.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap


def to_pixels(raw: np.ndarray) -> np.ndarray:
    """A raw (C, H, W) image in [0, 1] (C of 1, 3 or 4) as contiguous (H, W, C) uint8 with C of 1 or 3.

    Alpha is composited onto black, as the data loaders do.
    """
    array = np.asarray(raw, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.shape[0] == 4:
        array = array[:3] * array[3:4]
    pixels = np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(pixels.transpose(1, 2, 0))


def pixels_to_qimage(pixels: np.ndarray) -> QImage:
    """(H, W), (H, W, 1) or (H, W, 3) uint8 pixels as a QImage that owns its memory."""
    array = np.ascontiguousarray(pixels if pixels.ndim == 3 else pixels[:, :, None], dtype=np.uint8)
    height, width, channels = array.shape
    image_format = QImage.Format.Format_Grayscale8 if channels == 1 else QImage.Format.Format_RGB888
    # .copy(): the QImage would otherwise point into the numpy buffer, which Python may free.
    return QImage(array.data, width, height, array.strides[0], image_format).copy()


def raw_to_qimage(raw: np.ndarray) -> QImage:
    """A raw (C, H, W) float image in [0, 1] as a QImage."""
    return pixels_to_qimage(to_pixels(raw))


def qimage_to_array(image: QImage) -> np.ndarray:
    """A QImage's pixels as (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA uint8 (a copy)."""
    if image.isGrayscale() and not image.hasAlphaChannel():
        image, channels = image.convertToFormat(QImage.Format.Format_Grayscale8), 1
    elif image.hasAlphaChannel():
        image, channels = image.convertToFormat(QImage.Format.Format_RGBA8888), 4
    else:
        image, channels = image.convertToFormat(QImage.Format.Format_RGB888), 3
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * height).reshape(height, stride)
    array = buffer[:, :width * channels].reshape(height, width, channels).copy()
    return array[:, :, 0] if channels == 1 else array


def scaled(image: QImage, size: int) -> QImage:
    """``image`` fitted into a ``size`` x ``size`` square, keeping its aspect ratio.

    Enlarging uses whole multiples of nearest-neighbour pixels (crisp squares);
    reducing is smooth.
    """
    if image.isNull() or size <= 0:
        return image
    longest = max(image.width(), image.height())
    if longest <= size:
        factor = max(1, size // longest)
        return image.scaled(image.width() * factor, image.height() * factor, Qt.AspectRatioMode.IgnoreAspectRatio,
                            Qt.TransformationMode.FastTransformation)
    return image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


def scaled_pixmap(image: QImage, size: int) -> QPixmap:
    """:func:`scaled` as a pixmap (GUI thread only)."""
    return QPixmap.fromImage(scaled(image, size))
