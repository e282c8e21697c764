"""An image folder: one subfolder per class, the layout torchvision's ImageFolder reads.

:func:`walk_images` is the one rule for which files under a folder are
images to read, used by training, the Data panel and ``classify`` alike:
entries whose name starts with a dot (files and folders, at any depth) are
left out; only regular files with an image extension are read; a FIFO,
socket or device, a broken link, a link loop, a link to a folder that
contains it (``cats -> ..``) or to a file or folder inside the image folder
(read once, where it really is) is listed as skipped with the reason. Links
to folders and files elsewhere are followed, each real folder read once.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from dlstudio.core.data.dataset import LabeledTensors, SkippedFile
from dlstudio.core.data.errors import DataError
from dlstudio.core.data.images import image_input_shape
from dlstudio.core.data.reader import UnreadableImage, fit_pil_image, read_image

__all__ = ["IMAGE_EXTENSIONS", "empty_class_problem", "fit_pil_image", "load_image_folder", "read_image", "scan_folder",
           "walk_images"]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def _inside(path: str, folder: str) -> bool:
    """Whether the real path ``path`` is ``folder`` or lies under it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _entry_kind(path: Path, real_root: str) -> tuple[os.stat_result | None, str | None]:
    """The stat of ``path`` (links followed) or the reason it is skipped."""
    try:
        info = os.stat(path)
    except OSError as error:
        if os.path.islink(path):
            if error.errno == 40:  # ELOOP
                return None, "a link loop (the link leads back to itself)"
            return None, "a broken link (its target does not exist)"
        return None, f"cannot be read ({error.strerror or 'input/output error'})"
    if os.path.islink(path):
        target = os.path.realpath(path)
        if stat.S_ISDIR(info.st_mode):
            if _inside(real_root, target) or _inside(os.path.realpath(path.parent), target):
                return None, "a link to a folder that contains it (a loop); not followed"
            if _inside(target, real_root):
                return None, "a link to a folder inside the image folder (its images are read there); not followed"
        elif _inside(target, real_root):
            return None, "a link to a file inside the image folder (read there, once)"
    return info, None


def walk_images(root: Path, real_root: str | None = None,
                seen: set[tuple[int, int]] | None = None) -> Iterator[tuple[Path, str | None]]:
    """Files under ``root``, depth first in sorted order: ``(path, None)`` for an image to read,
    ``(path, reason)`` for an entry skipped (not an image type, not a regular file, a bad link...).

    ``real_root`` is the folder that links may not lead back into (default:
    ``root``); ``seen`` collects the real folders already read, so that two
    links to one folder elsewhere give its images once.
    """
    real_root = real_root or os.path.realpath(root)
    seen = set() if seen is None else seen
    try:
        info = os.stat(root)
        seen.add((info.st_dev, info.st_ino))
    except OSError:
        pass
    stack: list[Path] = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                names = sorted(entry.name for entry in entries if not entry.name.startswith("."))
        except OSError as error:
            yield folder, f"the folder cannot be read ({error.strerror or 'input/output error'})"
            continue
        folders: list[Path] = []
        for name in names:
            path = folder / name
            info, reason = _entry_kind(path, real_root)
            if info is None:
                yield path, reason
            elif stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in seen:
                    yield path, "a folder already read through another link; not read twice"
                else:
                    seen.add(key)
                    folders.append(path)
            elif not stat.S_ISREG(info.st_mode):
                yield path, "not a regular file (a pipe, socket or device)"
            elif path.suffix.lower() in IMAGE_EXTENSIONS:
                yield path, None
            else:
                yield path, f"not an image file type ({path.suffix or 'no extension'})"
        stack.extend(reversed(folders))  # subfolders in sorted order, each after the files beside it


def scan_folder(root: Path) -> tuple[list[str], list[list[Path]], list[SkippedFile]]:
    """Class names, image paths per class, and entries skipped with the reason (sorted, deterministic)."""
    if not root.is_dir():
        raise DataError(f"the image folder {str(root)!r} does not exist")
    real_root = os.path.realpath(root)
    skipped: list[SkippedFile] = []
    seen: set[tuple[int, int]] = set()
    try:
        info = os.stat(root)
        seen.add((info.st_dev, info.st_ino))
        with os.scandir(root) as entries:
            names = sorted(entry.name for entry in entries if not entry.name.startswith("."))
    except OSError as error:
        raise DataError(f"the image folder {str(root)!r} cannot be read "
                        f"({error.strerror or 'input/output error'})") from None
    class_dirs: list[Path] = []
    for name in names:
        path = root / name
        info, reason = _entry_kind(path, real_root)
        if info is not None and stat.S_ISDIR(info.st_mode):
            key = (info.st_dev, info.st_ino)
            if key in seen:
                skipped.append(SkippedFile(str(path), "a folder already read through another link; not read twice"))
                continue
            seen.add(key)
            class_dirs.append(path)
        elif reason is not None and (os.path.islink(path) or path.is_dir()):
            skipped.append(SkippedFile(str(path), reason))  # a class folder that is a bad link: say so
    if len(class_dirs) < 2:
        found = f"only {class_dirs[0].name!r}" if class_dirs else "none"
        raise DataError(f"the image folder {str(root)!r} needs one subfolder per class and at least two classes; "
                        f"found {found}")
    files: list[list[Path]] = []
    for class_dir in class_dirs:
        images = []
        for path, reason in walk_images(class_dir, real_root, seen):
            if reason is None:
                images.append(path)
            else:
                skipped.append(SkippedFile(str(path), reason))
        files.append(images)
    return [d.name for d in class_dirs], files, skipped


def empty_class_problem(root: Path, name: str, unreadable: list[SkippedFile]) -> str:
    """Why class folder ``name`` gives no sample, in one line: empty, or every image in it ``unreadable``."""
    where = f"class folder {name!r} in {str(root)!r}"
    if not unreadable:
        return (f"{where} has no images: each subfolder is one class, so add images to it or move it out of "
                f"the image folder")
    first = unreadable[0]
    count = len(unreadable)
    return (f"{where} has no readable images: none of its {count} image file{'s' * (count != 1)} could be read "
            f"({Path(first.path).name}: {first.reason})")


def load_image_folder(root: Path, input_shape: tuple[int, ...], *, keep_empty_classes: bool = False) -> LabeledTensors:
    """Read every image under ``root`` into memory as uint8 pixels at ``input_shape`` (4x less than float32).

    The array is allocated once for all files (no list of arrays to stack).
    Unreadable files are skipped and listed in ``skipped``; a class left with
    no readable image is refused, naming it (see :func:`empty_class_problem`),
    unless ``keep_empty_classes``: then it is kept with no sample, so that a
    preview can show the other classes beside the problem.
    """
    channels, height, width = image_input_shape(input_shape, f"the image folder {str(root)!r}")
    class_names, files, skipped = scan_folder(root)
    total = sum(len(paths) for paths in files)
    pixels = np.empty((total, channels, height, width), dtype=np.uint8)
    labels = np.empty(total, dtype=np.int64)
    count = 0
    for label, (name, paths) in enumerate(zip(class_names, files)):
        read = 0
        unreadable: list[SkippedFile] = []
        for path in paths:
            try:
                pixels[count] = read_image(path, channels, height, width)
            except UnreadableImage as error:
                unreadable.append(SkippedFile(str(path), str(error)))
                continue
            labels[count] = label
            count += 1
            read += 1
        skipped.extend(unreadable)
        if read == 0 and not keep_empty_classes:
            raise DataError(empty_class_problem(root, name, unreadable))
    if count < total:
        pixels.resize((count, channels, height, width), refcheck=False)  # hands the unused rows back
        labels = labels[:count].copy()
    return LabeledTensors(torch.from_numpy(pixels), torch.from_numpy(labels), class_names, skipped)
