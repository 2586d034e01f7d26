"""Image files and in-memory pictures: the one home of pconv's image I/O.

Two readers, for two uses:

- :func:`read_picture` / :func:`write_picture`: images to inpaint, read and written
  without losing what inpainting does not change (the command line, the Python API,
  the server);
- :func:`read_rgb`: photos as plain 8-bit RGB, whatever their file says (training data
  and evaluation's ground truth): greyscale, palette, CMYK and 16-bit images become
  RGB, transparent pixels are composited over white (their stored colour is arbitrary).

A :class:`Picture` is an image's pixels in their own depth and layout and the file's
metadata. Inpainting replaces colour values of hole
pixels only: known pixels, alpha, bit depth, EXIF, ICC profile, resolution and PNG text
go to the output as they came.

Layouts (``pixels`` is ``(H, W, C)``): C = 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA, of
dtype uint8, uint16 (16-bit files) or floats in [0, 1] (arrays and tensors from
Python). Files in other modes are converted once, on reading: palette images to RGB or
RGBA, bilevel to grey, CMYK and YCbCr to RGB. EXIF orientation is applied (the image is
inpainted upright, as viewers show it, and written upright without the orientation tag).

Pillow reads 16-bit-per-channel colour PNGs only as 8-bit; those are read and written
with OpenCV (``pip install opencv-python-headless``) so that no bit is lost, or refused
with an error naming that package when it is missing.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError
from torch import Tensor

from pconv.files import ImageReadError, atomic_write

__all__ = [
    "ImageLike",
    "ImageTooLargeError",
    "ImageWriteError",
    "Picture",
    "UnsupportedImageError",
    "as_picture",
    "check_pixel_count",
    "output_format",
    "picture_from_pil",
    "picture_to_pil",
    "read_picture",
    "read_rgb",
    "to_rgb",
    "without_palette",
    "write_picture",
]

#: Pillow modes read as they are: mode → (channels, dtype).
_NATIVE_MODES = {
    "L": (1, np.uint8),
    "LA": (2, np.uint8),
    "RGB": (3, np.uint8),
    "RGBA": (4, np.uint8),
    "I;16": (1, np.uint16),
    "I;16L": (1, np.uint16),
    "I;16B": (1, np.uint16),
    "I;16N": (1, np.uint16),
}
#: Modes converted on reading (and written in the converted mode).
_CONVERTED_MODES = {
    "1": "L",
    "PA": "RGBA",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "La": "LA",
    "RGBa": "RGBA",
}
#: Metadata carried from the input file to the output file (where the format stores it).
_METADATA_KEYS = ("exif", "icc_profile", "dpi", "xmp", "comment", "transparency")
_FORMAT_OPTIONS = {
    "JPEG": {"quality": 95},
    "WEBP": {"lossless": True, "exact": True},  # exact: colour under transparent pixels kept
    "TIFF": {"compression": "tiff_deflate"},
}
_DEEP_PNG_RAWMODES = ("RGB;16B", "RGBA;16B")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as Pillow's RGB → L


class ImageTooLargeError(ImageReadError):
    """An image with more pixels than a limit allows (refused before decoding)."""


class UnsupportedImageError(ImageReadError):
    """A file that is not in an image format pconv reads."""


class ImageWriteError(ValueError):
    """An output image that cannot be written in the format its file name asks for."""


@dataclass
class Picture:
    """An image's pixels in their own depth and layout, and its metadata.

    Attributes:
        pixels: ``(H, W, C)``: C = 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA; uint8,
            uint16, or floats in [0, 1].
        info: metadata to write with the pixels (Pillow's ``image.info`` keys, and
            ``"text"``: PNG text chunks).
    """

    pixels: np.ndarray
    info: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pixels.ndim != 3 or self.pixels.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"pixels must be (H, W, 1|2|3|4), got {self.pixels.shape}")
        dtype = self.pixels.dtype
        if dtype not in (np.uint8, np.uint16) and not np.issubdtype(dtype, np.floating):
            raise ValueError(f"pixels must be uint8, uint16 or floats, got {dtype}")

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``, as Pillow gives sizes."""
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def deep_colour(self) -> bool:
        """16-bit RGB(A), which Pillow cannot hold (OpenCV reads and writes it)."""
        return self.pixels.dtype == np.uint16 and self.pixels.shape[2] >= 3

    @property
    def colour_channels(self) -> int:
        """1 for grey (with or without alpha), 3 for RGB(A)."""
        return 1 if self.pixels.shape[2] <= 2 else 3

    def rgb(self, rows: slice = slice(None), columns: slice = slice(None)) -> np.ndarray:
        """float32 ``(h, w, 3)`` RGB in [0, 1] of a window (grey repeated, alpha dropped)."""
        colour = self.pixels[rows, columns, : self.colour_channels]
        values = colour.astype(np.float32) / _full_scale(self.pixels.dtype)
        return np.repeat(values, 3, axis=2) if self.colour_channels == 1 else values

    def set_rgb(self, rows: slice, columns: slice, where: np.ndarray, rgb: np.ndarray) -> None:
        """Set the colour of the window pixels where ``where`` (bool ``(h, w)``) is True.

        ``rgb`` is float ``(h, w, 3)`` in [0, 1]; grey pictures get its luma (ITU-R 601).
        Values are rounded to the picture's depth; alpha is left alone.
        """
        values = rgb[where]  # (k, 3)
        if self.colour_channels == 1:
            values = (values @ _LUMA)[:, None]
        scale = _full_scale(self.pixels.dtype)
        if scale != 1.0:
            values = np.rint(np.clip(values, 0.0, 1.0) * scale)
        window = self.pixels[rows, columns]  # a view: writes land in self.pixels
        window[where, : self.colour_channels] = values.astype(self.pixels.dtype)


def without_palette(image: Image.Image) -> Image.Image:
    """A palette image as RGB, or RGBA where its palette has a transparent entry; any
    other image as it is."""
    if image.mode != "P":
        return image
    return image.convert("RGBA" if "transparency" in image.info else "RGB")


def _full_scale(dtype: np.dtype) -> float:
    return {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(np.dtype(dtype), 1.0)


def picture_from_pil(image: Image.Image) -> Picture:
    """A :class:`Picture` of a PIL image (converting modes listed in the module docstring).

    Raises:
        ValueError: a mode pconv cannot inpaint without losing values (32-bit ``I``
            beyond 16 bits, float ``F``).
    """
    info = {key: image.info[key] for key in _METADATA_KEYS if key in image.info}
    if image.mode in _CONVERTED_MODES or image.mode == "P":
        info.pop("transparency", None)
        image = without_palette(image)
        image = image.convert(_CONVERTED_MODES.get(image.mode, image.mode))
    mode = image.mode
    if mode == "I":  # 16-bit PNGs in some Pillow versions; kept when the values fit 16 bits
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError("32-bit integer images beyond the 16-bit range are not supported")
        return Picture(values.astype(np.uint16)[:, :, None], info)
    if mode not in _NATIVE_MODES:
        raise ValueError(f"images of mode {mode} are not supported (use 8- or 16-bit grey, RGB or RGBA)")
    channels, dtype = _NATIVE_MODES[mode]
    pixels = np.asarray(image).astype(dtype, copy=True).reshape(image.height, image.width, channels)
    return Picture(pixels, info)


def picture_to_pil(picture: Picture) -> Image.Image:
    """The PIL image of a :class:`Picture` (not for 16-bit colour, which PIL cannot hold)."""
    if picture.deep_colour:
        raise ValueError("Pillow cannot hold 16-bit colour images")
    pixels = picture.pixels
    if np.issubdtype(pixels.dtype, np.floating):
        pixels = np.rint(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    image.info.update({key: value for key, value in picture.info.items() if key != "text"})
    return image


def read_picture(
    file: str | Path | BinaryIO, *, name: str | None = None, max_pixels: int | None = None
) -> Picture:
    """Read an image file as a :class:`Picture`, upright (EXIF orientation applied).

    Args:
        file: a path, or a binary file object positioned at the start (an upload).
        name: what to call the file in errors (default: its path, or ``"image"``).
        max_pixels: refuse images of more pixels, from their header, before decoding.

    Raises:
        ImageTooLargeError: the image has more than ``max_pixels`` pixels.
        ImageReadError: the file is missing, truncated, corrupt, not an image, of an
            unsupported mode, or a 16-bit colour PNG while OpenCV is not installed.
    """
    name = name or _file_name(file, "image")
    try:
        with Image.open(file) as image:
            check_pixel_count(image.size, max_pixels, name)
            if image.format == "PNG" and _png_rawmode(image) in _DEEP_PNG_RAWMODES:
                return _read_deep_png(file, image)
            image.load()
            picture = picture_from_pil(ImageOps.exif_transpose(image))
            if getattr(image, "text", None):  # PNG text chunks
                picture.info["text"] = dict(image.text)
            return picture
    except ImageTooLargeError:
        raise
    except UnidentifiedImageError as error:
        raise UnsupportedImageError(f"cannot read image {name}: not an image format pconv reads") from error
    except Image.DecompressionBombError as error:
        if max_pixels is None:
            raise ImageReadError(f"cannot read image {name}: {error}") from error
        # Pillow refuses images over twice its MAX_IMAGE_PIXELS at open, before pconv's own check.
        raise ImageTooLargeError(
            f"image {name} has more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, "
            f"more than the limit of {max_pixels:,}"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"cannot read image {name}: {error}") from error


def check_pixel_count(size: tuple[int, int], max_pixels: int | None, name: str) -> None:
    """Raise :class:`ImageTooLargeError` if ``size`` = ``(width, height)`` exceeds ``max_pixels``."""
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"image {name} is {width}×{height} = {width * height:,} pixels, "
            f"more than the limit of {max_pixels:,}"
        )


def _file_name(file: str | Path | BinaryIO, default: str) -> str:
    """A path's text, or ``default`` for a file object."""
    return str(file) if isinstance(file, str | Path) else default


def _png_rawmode(image: Image.Image) -> str | None:
    """How Pillow will decode a PNG (e.g. ``"RGB;16B"``), read before ``load()``."""
    if not image.tile:
        return None
    args = image.tile[0].args
    return args if isinstance(args, str) else args[0]


def _read_deep_png(file: str | Path | BinaryIO, image: Image.Image) -> Picture:
    cv2 = _opencv("it has 16 bits per colour channel, which Pillow reads only as 8-bit")
    if isinstance(file, str | Path):
        data = np.fromfile(file, np.uint8)
    else:
        file.seek(0)
        data = np.frombuffer(file.read(), np.uint8)
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint16:
        raise ValueError("OpenCV could not decode it as 16-bit")
    pixels = pixels[:, :, [2, 1, 0, 3][: pixels.shape[2]]]  # BGR(A) → RGB(A)
    info = {key: image.info[key] for key in ("icc_profile", "dpi") if key in image.info}
    return Picture(np.ascontiguousarray(pixels), info)


def _opencv(reason: str):
    try:
        import cv2
    except ImportError:
        raise ValueError(
            f"{reason}; install OpenCV to keep all 16 bits: pip install opencv-python-headless"
        ) from None
    return cv2


def output_format(path: str | Path) -> str:
    """The Pillow format name for ``path``'s extension (``"PNG"``, ``"JPEG"``, ...).

    Raises:
        ImageWriteError: the extension is missing or not an image format Pillow writes.
    """
    extension = Path(path).suffix.lower()
    formats = Image.registered_extensions()
    if extension not in formats or formats[extension] not in Image.SAVE:
        raise ImageWriteError(
            f"cannot tell an image format from the name {Path(path).name!r}; "
            "end it in .png, .jpg, .webp, .tif or .bmp"
        )
    return formats[extension]


def encode_picture(picture: Picture, format: str) -> bytes:
    """``picture`` as the bytes of an image file in Pillow ``format``, with its metadata.

    Raises:
        ImageWriteError: the format cannot store the picture's mode (e.g. alpha in
            JPEG, 16-bit colour in anything but PNG).
    """
    if picture.deep_colour:
        return _encode_deep_png(picture, format)
    options = {key: value for key, value in picture.info.items() if key != "text"}
    if format == "PNG" and picture.info.get("text"):
        text = PngImagePlugin.PngInfo()
        for key, value in picture.info["text"].items():
            text.add_text(key, value)
        options["pnginfo"] = text
    options |= _FORMAT_OPTIONS.get(format, {})
    buffer = io.BytesIO()
    try:
        picture_to_pil(picture).save(buffer, format=format, **options)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ImageWriteError(
            f"{format} cannot store this {_describe(picture)} image ({error}); "
            "choose a format that does, such as .png"
        ) from None
    return buffer.getvalue()


def _encode_deep_png(picture: Picture, format: str) -> bytes:
    if format != "PNG":
        raise ImageWriteError(f"16-bit colour images can only be written as PNG, not {format}")
    cv2 = _opencv("writing a 16-bit colour PNG needs OpenCV")
    order = [2, 1, 0, 3][: picture.pixels.shape[2]]  # RGB(A) → BGR(A)
    ok, data = cv2.imencode(".png", np.ascontiguousarray(picture.pixels[:, :, order]))
    if not ok:
        raise ImageWriteError("OpenCV could not encode the 16-bit PNG")
    return data.tobytes()


def _describe(picture: Picture) -> str:
    depth = "16-bit" if picture.pixels.dtype == np.uint16 else "8-bit"
    layout = {1: "grey", 2: "grey + alpha", 3: "RGB", 4: "RGBA"}[picture.pixels.shape[2]]
    return f"{depth} {layout}"


def write_picture(picture: Picture, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``picture`` to ``path`` in the format of its extension, atomically.

    The file is complete or absent (never half-written); missing parent folders are
    created. Lossless formats (PNG, WebP — written lossless —, TIFF, BMP) keep every
    pixel; JPEG is re-encoded at quality 95.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ImageWriteError: the format cannot store the picture.
        OSError: the file or its folder cannot be written (naming ``path``).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")
    data = encode_picture(picture, output_format(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(error.errno, f"cannot create folder {path.parent}: {error.strerror}") from None
    return atomic_write(path, data)


#: The kinds of image the Inpainter and the Upscaler take and give back.
ImageLike = Image.Image | np.ndarray | Tensor | Picture


def as_picture(image: ImageLike) -> tuple[Picture, Callable[[Picture], ImageLike]]:
    """A :class:`Picture` copy of ``image`` (a PIL image, a numpy array ``(H, W)`` or
    ``(H, W, 1|2|3|4)`` of uint8, uint16 or floats in [0, 1], a tensor ``(C, H, W)``
    with C = 1 or 3, or a Picture) and the function that turns a result back into the
    same kind of image.

    Raises:
        ValueError: a shape, type or value range pconv cannot inpaint.
        TypeError: not an image.
    """
    if isinstance(image, Picture):
        return Picture(image.pixels.copy(), dict(image.info)), lambda result: result
    if isinstance(image, Image.Image):
        return picture_from_pil(image), picture_to_pil
    if isinstance(image, np.ndarray):
        return _picture_from_array(image, "image array")
    if isinstance(image, Tensor):
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"image tensors must be (C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
        picture, restore_array = _picture_from_array(
            image.detach().cpu().permute(1, 2, 0).numpy(), "image tensor"
        )
        return (
            picture,
            lambda result: (
                torch.from_numpy(restore_array(result)).permute(2, 0, 1).to(image.device, image.dtype)
            ),
        )
    raise TypeError(f"image must be a PIL image, a numpy array or a tensor, not {type(image).__name__}")


def _picture_from_array(array: np.ndarray, name: str) -> tuple[Picture, Callable[[Picture], np.ndarray]]:
    shape, dtype = array.shape, array.dtype
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"{name} must be (H, W), (H, W, 1|2|3|4), got {shape}")
    if np.issubdtype(dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ValueError(f"{name} of floats must hold values in [0, 1]")
    elif dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{name} must be uint8, uint16 or floats in [0, 1], not {dtype}")
    return Picture(array.copy()), lambda result: result.pixels.reshape(result.pixels.shape[:2] + shape[2:])


_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def read_rgb(path: str | Path) -> Image.Image:
    """Decode ``path`` into an upright 8-bit RGB image.

    Raises:
        ImageReadError: the file is missing, truncated, corrupt or not an image.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(ImageOps.exif_transpose(image))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"cannot read image {path}: {error}") from error


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL image to 8-bit RGB (16-bit scaled down, alpha over white)."""
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.uint32)
        if image.mode != "I" or values.max() > 255:
            values = values // 257  # 0–65535 onto 0–255
        image = Image.fromarray(values.clip(0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        image = Image.fromarray(np.asarray(image).clip(0, 255).astype(np.uint8), mode="L")
    image = without_palette(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image
