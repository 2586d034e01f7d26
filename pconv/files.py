"""Files: finding images in folders, the error of an unreadable image, writing files atomically,
and why a torch file did not load."""

from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "atomic_write",
    "list_image_files",
    "pair_by_stem",
    "torch_load_reason",
]


class ImageReadError(ValueError):
    """An image file that cannot be decoded (for training data and for inference alike)."""


#: File extensions read as images (lower case).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


def list_image_files(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` by extension, sorted; hidden files are skipped.

    Raises:
        NotADirectoryError: ``folder`` does not exist or is not a folder.
        PermissionError: ``folder`` (or a subfolder) cannot be read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    pattern = "**/*" if recursive else "*"
    try:
        files = [
            path
            for path in folder.glob(pattern)
            if path.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in path.relative_to(folder).parts)
            and path.is_file()
        ]
    except PermissionError as error:
        raise PermissionError(f"cannot read folder {folder}: {error}") from error
    return sorted(files)


def pair_by_stem(
    image_folder: str | Path, mask_folder: str | Path
) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """Match the image files of two folders by relative path without extension.

    ``photos/a/cat.jpg`` pairs with ``masks/a/cat.png``. Returns ``(pairs, images
    without a mask, masks without an image)``, each sorted.

    Raises:
        NotADirectoryError, PermissionError: a folder is missing or unreadable.
        ValueError: two files of one folder share a name without extension.
    """
    images, masks = _by_stem(image_folder), _by_stem(mask_folder)
    pairs = [(images[stem], masks[stem]) for stem in sorted(images.keys() & masks.keys())]
    lonely_images = sorted(images[stem] for stem in images.keys() - masks.keys())
    lonely_masks = sorted(masks[stem] for stem in masks.keys() - images.keys())
    return pairs, lonely_images, lonely_masks


def _by_stem(folder: str | Path) -> dict[Path, Path]:
    files: dict[Path, Path] = {}
    for path in list_image_files(folder):
        stem = path.relative_to(folder).with_suffix("")
        if stem in files:
            raise ValueError(f"{files[stem]} and {path} have the same name; which one to use is unclear")
        files[stem] = path
    return files


def atomic_write(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that the file is either complete or untouched.

    The data goes to a temporary file in the same folder, is flushed and fsynced, and
    is renamed over ``path``; the folder is fsynced too. A crash or kill at any moment
    leaves the previous ``path`` (or none) and at worst a stray ``.tmp`` file; an
    error (disk full, permissions) removes the temporary file and is raised as an
    :class:`OSError` naming ``path``.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, OSError):
            raise OSError(error.errno, f"cannot write {path}: {error.strerror or error}") from error
        raise
    with contextlib.suppress(OSError):  # not every platform can fsync a folder
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return path


def torch_load_reason(error: Exception) -> str:
    """One line saying why ``torch.load(..., weights_only=True)`` refused a file.

    torch's own text for a pickle with arbitrary objects advises ``weights_only=False``,
    which would run code from the file; pconv never loads that way, so it says so instead.
    """
    if isinstance(error, pickle.UnpicklingError):
        return (
            "it holds Python objects other than tensors and plain data, which pconv never "
            "loads (they could run code): it was not written by pconv, or it was altered"
        )
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
