"""Inpainting and upscaling files and folders of files: what ``pconv inpaint`` and
``pconv upscale`` do, callable from Python.

Each function checks everything it can before any work (pairing, output formats,
existing outputs), then processes file after file: one bad file is recorded in the
returned :class:`FolderReport` and the others go on. Masks use the file convention:
white / 255 = hole (``mask_convention="black-hole"`` flips it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pconv.files import list_image_files, pair_by_stem
from pconv.images import Picture, output_format, read_picture, write_picture
from pconv.inference.inpainter import Inpainter
from pconv.inference.upscaler import Upscaler
from pconv.masks import check_hole, read_mask
from pconv.masks.io import MaskChannel, MaskConvention

__all__ = [
    "FolderError",
    "FolderReport",
    "check_outputs",
    "inpaint_file",
    "inpaint_folder",
    "read_image_and_hole",
    "upscale_folder",
]

#: Wraps the loop over files, e.g. a progress bar: ``progress(jobs) -> iterable``.
Progress = Callable[[list], Iterable]


class FolderError(ValueError):
    """The job cannot start: nothing to pair, an output folder that cannot be made,
    outputs that exist already (without ``overwrite``)."""


@dataclass
class FolderReport:
    """What a folder job did. Paths are the inputs' (``failed``: with the error)."""

    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)  # masks without a hole: copied as they were
    failed: list[tuple[Path, Exception]] = field(default_factory=list)
    images_without_mask: list[Path] = field(default_factory=list)
    masks_without_image: list[Path] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Files processed (written or failed)."""
        return len(self.written) + len(self.failed)


def read_image_and_hole(
    image: str | Path | BinaryIO,
    mask: str | Path | BinaryIO,
    mask_convention: MaskConvention = "white-hole",
    mask_channel: MaskChannel = "auto",
    *,
    max_pixels: int | None = None,
    image_name: str | None = None,
    mask_name: str | None = None,
) -> tuple[Picture, np.ndarray]:
    """An image file and its mask file, checked: the :class:`Picture` and its hole, bool
    ``(H, W)``, True = hole (all False when the mask has no hole).

    Args:
        image, mask: paths, or binary file objects positioned at the start (uploads).
        max_pixels: refuse larger images from their header, before decoding.
        image_name, mask_name: what to call the files in errors (default: their paths).

    Raises:
        ImageReadError (ImageTooLargeError, UnsupportedImageError): the image;
        MaskError (MaskSizeError, UnsupportedMaskError): the mask, its size, or a hole
            that covers the whole image.
    """
    picture = read_picture(image, name=image_name, max_pixels=max_pixels)
    hole = read_mask(mask, mask_convention, mask_channel, name=mask_name, size=picture.size)
    check_hole(hole)
    return picture, hole


def inpaint_file(
    inpainter: Inpainter,
    image: str | Path,
    mask: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    mask_convention: MaskConvention = "white-hole",
    mask_channel: MaskChannel = "auto",
) -> bool:
    """Inpaint the image file ``image`` with the mask file ``mask`` into ``output``
    (format from its extension, written atomically, metadata kept).

    Returns False when the mask has no hole: ``output`` is then the image unchanged.

    Raises:
        ValueError, OSError: an unreadable image or mask, a mask that does not fit, an
            output that cannot be written or exists (without ``overwrite``).
    """
    picture, hole = read_image_and_hole(image, mask, mask_convention, mask_channel)
    has_hole = bool(hole.any())
    if has_hole:
        picture = inpainter.inpaint(picture, hole)
    write_picture(picture, output, overwrite=overwrite)
    return has_hole


def inpaint_folder(
    inpainter: Inpainter,
    input_dir: str | Path,
    mask_dir: str | Path,
    output_dir: str | Path,
    *,
    overwrite: bool = False,
    mask_convention: MaskConvention = "white-hole",
    mask_channel: MaskChannel = "auto",
    progress: Progress = list,
) -> FolderReport:
    """Inpaint every image of ``input_dir`` (recursively) that has a mask of the same
    relative path and name, whatever the extension, in ``mask_dir``, into the same
    relative path in ``output_dir``.

    Raises:
        FolderError: no image has a mask, ``output_dir`` cannot be made, or outputs
            exist (without ``overwrite``); nothing is written then.
        NotADirectoryError, PermissionError: a folder is missing or unreadable.
    """
    pairs, images_without_mask, masks_without_image = pair_by_stem(input_dir, mask_dir)
    if not pairs:
        raise FolderError(
            f"no image in {input_dir} has a mask in {mask_dir} "
            "(masks are matched to images by relative path without extension)"
        )
    outputs = _outputs([image for image, _ in pairs], input_dir, output_dir, overwrite)
    report = FolderReport(images_without_mask=images_without_mask, masks_without_image=masks_without_image)
    masks = dict(zip(outputs, (mask for _, mask in pairs), strict=True))

    def work(image: Path, output: Path) -> bool:
        return inpaint_file(
            inpainter, image, masks[output], output, overwrite=overwrite,
            mask_convention=mask_convention, mask_channel=mask_channel,
        )  # fmt: skip

    return _each_file([image for image, _ in pairs], outputs, work, progress, report)


def upscale_folder(
    upscaler: Upscaler,
    input_dir: str | Path,
    output_dir: str | Path,
    scale: int,
    *,
    overwrite: bool = False,
    progress: Progress = list,
) -> FolderReport:
    """Upscale every image of ``input_dir`` (recursively) ×``scale`` into the same
    relative path in ``output_dir``.

    Raises:
        FolderError: ``input_dir`` has no images, ``output_dir`` cannot be made, or
            outputs exist (without ``overwrite``); nothing is written then.
        NotADirectoryError, PermissionError: the folder is missing or unreadable.
    """
    images = list_image_files(input_dir)
    if not images:
        raise FolderError(f"no images found in {input_dir}")
    outputs = _outputs(images, input_dir, output_dir, overwrite)

    def work(image: Path, output: Path) -> bool:
        write_picture(upscaler.upscale(read_picture(image), scale), output, overwrite=overwrite)
        return True

    return _each_file(images, outputs, work, progress, FolderReport())


def _each_file(
    images: list[Path],
    outputs: list[Path],
    work: Callable[[Path, Path], bool],
    progress: Progress,
    report: FolderReport,
) -> FolderReport:
    """``work(image, output)`` for each pair, recorded in ``report``: a failure is kept
    with its error and the others go on; ``work`` returning False means "copied
    unchanged"."""
    for image, output in progress(list(zip(images, outputs, strict=True))):
        try:
            changed = work(image, output)
        except (ValueError, OSError) as error:  # one bad file does not stop the others
            report.failed.append((image, error))
            continue
        report.written.append(image)
        if not changed:
            report.unchanged.append(image)
    return report


def check_outputs(outputs: list[Path], overwrite: bool) -> None:
    """Fail before any work if an output's format is unknown, or it exists without ``overwrite``.

    Raises:
        FolderError: an output exists; ValueError: an output's format is unknown.
    """
    for output in outputs:
        output_format(output)
    existing = [output for output in outputs if output.exists()]
    if existing and not overwrite:
        what = f"{existing[0]} already exists" if len(existing) == 1 else (
            f"{len(existing)} outputs already exist (first: {existing[0]})"
        )  # fmt: skip
        raise FolderError(f"{what}; pass --overwrite to replace")


def _outputs(
    images: list[Path], input_dir: str | Path, output_dir: str | Path, overwrite: bool
) -> list[Path]:
    """The output path of each image, after making ``output_dir`` and checking the outputs."""
    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FolderError(f"cannot create output folder {output_dir}: {error.strerror}") from None
    outputs = [output_dir / image.relative_to(input_dir) for image in images]
    check_outputs(outputs, overwrite)
    return outputs
