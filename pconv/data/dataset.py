"""Training and validation items: image crops with hole masks, or super-resolution canvases.

Every random draw of item ``i`` comes from ``numpy.random.default_rng([seed, epoch,
i])``, so a sample depends only on the seed, the epoch (:meth:`set_epoch`) and the
index: reproducible across runs, worker counts and resumed training.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from pconv.files import list_image_files
from pconv.images import ImageReadError, read_rgb
from pconv.masks import MASK_CONVENTIONS, MaskGenerator, hole_to_mask, read_mask, resize_hole
from pconv.masks.augment import augment_hole
from pconv.masks.io import MaskConvention
from pconv.superres import SCALES, check_scale, downscale, sparse_canvas

__all__ = [
    "DataError",
    "DataWarning",
    "InpaintingDataset",
    "PhotoCrops",
    "SuperResolutionDataset",
    "to_tensor",
]


class DataError(ValueError):
    """A dataset that cannot be used at all (e.g. a folder with no readable image)."""


class DataWarning(UserWarning):
    """A file skipped or an image altered while loading data."""


class PhotoCrops(torch.utils.data.Dataset):
    """Square crops of the images under ``root`` (recursive): what the training tasks'
    datasets share. Subclasses say what an item is (:meth:`sample`).

    Args:
        root: folder of JPEG/PNG/WebP/BMP/TIFF images.
        crop_size: side of the square crops.
        train: random crops, flips and rescales if True; centre crops otherwise.
        scale_range: ``(low, high)`` random rescale factors before cropping (train only).
        flip: random horizontal flips (train only).
        seed: base seed of every random draw.

    Images smaller than the crop are upscaled (bicubic), counted once when the dataset
    is built. Unreadable files are skipped with one :class:`DataWarning` each and
    counted in :attr:`skipped`.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        crop_size: int = 256,
        train: bool = True,
        scale_range: tuple[float, float] | None = None,
        flip: bool = True,
        seed: int = 0,
    ) -> None:
        self.crop_size, self.train, self.flip, self.seed = crop_size, train, flip, seed
        self.scale_range = scale_range
        self.epoch = 0
        self.skipped: list[Path] = []
        self.files = self._usable_images(Path(root))

    def _usable_images(self, root: Path) -> list[Path]:
        """Image files whose header can be read; counts those smaller than the crop."""
        usable, small = [], 0
        for path in list_image_files(root):
            try:
                with Image.open(path) as image:
                    width, height = image.size
            except (OSError, UnidentifiedImageError, SyntaxError) as error:
                self._skip(path, error)
                continue
            usable.append(path)
            small += min(width, height) < self.crop_size
        if not usable:
            raise DataError(f"no usable image in {root} ({len(self.skipped)} unreadable files)")
        if small:
            warnings.warn(
                f"{small} of {len(usable)} images in {root} are smaller than the {self.crop_size}px crop "
                "and will be upscaled",
                DataWarning,
                stacklevel=4,
            )
        return usable

    def _skip(self, path: Path, error: Exception) -> None:
        self.skipped.append(path)
        warnings.warn(f"skipping unreadable image {path}: {error}", DataWarning, stacklevel=4)

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops and masks: call once per epoch, before iterating."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return self.sample(index, self.epoch)

    def sample(self, index: int, epoch: int) -> tuple[torch.Tensor, ...]:
        """Item ``index`` as drawn in ``epoch`` (validation items ignore the epoch)."""
        raise NotImplementedError

    def _rng(self, index: int, epoch: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch if self.train else 0, index])

    def _augmented_crop(self, index: int, rng: np.random.Generator) -> Image.Image:
        """Image ``index``, cropped (and in training rescaled and flipped at random)."""
        crop = self._crop(self._read(index), rng)
        if self.train and self.flip and rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return crop

    def _read(self, index: int) -> Image.Image:
        """The image at ``index``; a file that fails to decode is skipped for the next one."""
        for offset in range(len(self.files)):
            path = self.files[(index + offset) % len(self.files)]
            if path in self.skipped:
                continue
            try:
                return read_rgb(path)
            except ImageReadError as error:
                self._skip(path, error)
        raise DataError(f"no image under {self.files[0].parent} could be decoded")

    def _crop(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        """A ``crop_size`` square: rescaled and placed at random (train) or centred."""
        size = self.crop_size
        scale = rng.uniform(*self.scale_range) if self.train and self.scale_range else 1.0
        scale = max(scale, size / min(image.size))  # never smaller than the crop
        if scale != 1.0:
            new_size = (max(size, round(image.width * scale)), max(size, round(image.height * scale)))
            image = image.resize(new_size, Image.Resampling.BICUBIC)
        if self.train:
            left, top = rng.integers(0, image.width - size + 1), rng.integers(0, image.height - size + 1)
        else:
            left, top = (image.width - size) // 2, (image.height - size) // 2
        return image.crop((int(left), int(top), int(left) + size, int(top) + size))


class InpaintingDataset(PhotoCrops):
    """Crops of the images under ``root`` paired with hole masks.

    Args:
        masks: ``None`` for masks from ``mask_generator``, or a folder of mask files
            (white/255 = hole unless ``mask_convention`` says otherwise), which are
            augmented with random dilation, rotation, translation and crop (train) or
            resized with nearest neighbour (validation).
        mask_generator: the generator used without ``masks`` (default: uniform over
            the six buckets, border or not with equal chance).
        Other arguments as :class:`PhotoCrops`.

    Items are ``(image, mask)``: float32 ``(3, S, S)`` in [0, 1] and float32
    ``(1, S, S)`` with 1 = known, 0 = hole.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        masks: str | Path | None = None,
        mask_generator: MaskGenerator | None = None,
        mask_convention: MaskConvention = "white-hole",
        **options,
    ) -> None:
        if mask_convention not in MASK_CONVENTIONS:
            raise ValueError(f"mask_convention must be one of {MASK_CONVENTIONS}, got {mask_convention!r}")
        self.mask_generator = mask_generator or MaskGenerator()
        self.mask_convention = mask_convention
        self.mask_files = list_image_files(masks) if masks is not None else None
        if self.mask_files == []:
            raise DataError(f"no mask images found in {masks}")
        super().__init__(root, **options)

    def sample(self, index: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``index`` as drawn in ``epoch`` (validation items ignore the epoch)."""
        rng = self._rng(index, epoch)
        crop = self._augmented_crop(index, rng)
        return to_tensor(np.asarray(crop)), hole_to_mask(self._hole(rng))[0]

    def _hole(self, rng: np.random.Generator) -> np.ndarray:
        """A bool ``(S, S)`` hole, True = hole, from the generator or the mask folder."""
        size = self.crop_size
        if self.mask_files is None:
            return self.mask_generator(size, size, rng)
        path = self.mask_files[rng.integers(len(self.mask_files))]
        hole = read_mask(path, self.mask_convention)
        return augment_hole(hole, size, rng) if self.train else resize_hole(hole, (size, size))


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """float32 ``(C, H, W)`` in [0, 1] of uint8 ``(H, W, C)`` pixels."""
    return torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1).contiguous()


class SuperResolutionDataset(PhotoCrops):
    """Crops of the images under ``root`` as super-resolution cases (:mod:`pconv.superres`).

    Args:
        scales: each item's scale is drawn from these (every item is one scale).
        Other arguments as :class:`PhotoCrops` (``crop_size`` must be a multiple of
        every scale).

    Items are ``(image, mask, canvas)``: the high-resolution crop float32 ``(3, S, S)``
    in [0, 1]; the mask ``(1, S, S)``, 1 at the canvas pixels that hold a
    low-resolution pixel, 0 elsewhere; and the canvas ``(3, S, S)``: the crop
    downscaled (antialiased bicubic) and spread over the grid, 0 in the holes. The
    network sees the canvas and is scored against the image.
    """

    def __init__(self, root: str | Path, *, scales: tuple[int, ...] = SCALES, **options) -> None:
        for scale in scales:
            check_scale(scale)
        if not scales:
            raise ValueError("give at least one scale")
        super().__init__(root, **options)
        if any(self.crop_size % scale for scale in scales):
            raise ValueError(f"crop_size {self.crop_size} must be a multiple of every scale {tuple(scales)}")
        self.scales = tuple(scales)

    def validation_scale(self, index: int) -> int:
        """The scale of validation item ``index``: the scales in turn."""
        return self.scales[index % len(self.scales)]

    def sample(self, index: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = self._rng(index, epoch)
        crop = self._augmented_crop(index, rng)
        scale = self.scales[rng.integers(len(self.scales))] if self.train else self.validation_scale(index)
        canvas, hole = sparse_canvas(np.asarray(downscale(crop, scale)), scale)
        return to_tensor(np.asarray(crop)), hole_to_mask(hole)[0], to_tensor(canvas)
