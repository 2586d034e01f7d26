"""The :class:`Inpainter`: a trained model that fills holes in images of any size.

Masks given to :meth:`Inpainter.inpaint` use the user-facing convention: **white / 255
/ True = hole** (``mask_convention="black-hole"`` flips it). Only hole pixels change:
known pixels come back bit-identical, in the image's own type, depth and layout.
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pconv.devices import autocast_dtype, cpu_unet_memory_format, resolve_device
from pconv.images import ImageLike, Picture, as_picture
from pconv.inference.blending import blend_into_border
from pconv.inference.onnx_network import OnnxNetwork
from pconv.inference.synthesis import synthesize
from pconv.inference.windows import check_window_settings, plan_windows
from pconv.masks.io import (
    MaskChannel,
    MaskConvention,
    check_hole,
    check_mask_size,
    hole_from_user_mask,
    hole_to_mask,
)
from pconv.models import PConvUNet
from pconv.weights import default_weights, load_weights

__all__ = ["DEFAULT_CONTEXT", "DEFAULT_MAX_PIXELS", "EmptyMaskWarning", "ImageLike", "Inpainter"]

#: Images up to this many pixels are inpainted whole (2048 × 2048).
DEFAULT_MAX_PIXELS = 2048 * 2048
#: Pixels of image kept in view around each hole region of a larger image.
DEFAULT_CONTEXT = 256


class EmptyMaskWarning(UserWarning):
    """The mask has no hole: the image is returned unchanged."""


class Inpainter:
    """A trained PConv U-Net ready to inpaint images.

    Args:
        weights: a ``.safetensors`` file written by ``pconv train`` or ``pconv export``
            (preset and depth from its header) or a training ``checkpoint.pt``; None
            loads the default model installed with the package.
        device: ``"cuda"``, ``"mps"``, ``"cpu"``, ...; None picks CUDA, then MPS, then CPU.
        precision: ``"auto"`` (bf16/fp16 autocast on CUDA, fp32 elsewhere), ``"fp32"``,
            ``"bf16"`` or ``"fp16"``. Masks are always handled in fp32.
        max_pixels: images up to this size are inpainted whole; larger ones window by
            window around their holes (see :mod:`pconv.inference.windows`), never downscaled.
        context: pixels of image in view around each hole region of a larger image.
        compile: run the network through ``torch.compile`` (needs a C++ compiler on
            CPUs, Triton on GPUs). The first image of each size compiles (about a
            minute on a 2-core CPU); later ones run faster (about 0.7× the time for the
            ``mini`` preset at 512² on such a CPU). Worth it for many images of one size.
        backend: ``"torch"`` (default) or ``"onnxruntime"``, which runs the ONNX file
            ``onnx`` (from ``pconv export --format onnx``) on the CPU instead of
            ``weights``, with the same pre- and post-processing.
        onnx: the ONNX file of the ``onnxruntime`` backend.
        blend: blend each fill into its hole's border with a smooth colour offset, so
            that it meets the known pixels without a seam
            (:mod:`pconv.inference.blending`); False gives the paper's composite of the
            network's output.
        refine: rebuild each fill from patches of the image's own known pixels, steered by
            the network's fill (:mod:`pconv.inference.synthesis`): real texture in large
            holes, at the cost of about 1 s per 512² image on 2 CPU cores. Each call of
            :meth:`inpaint` may override it.
        seed: seed of the refinement's random search: equal inputs give equal results.

    Attributes:
        backend: ``"torch"`` or ``"onnxruntime"``.
        model: the network: a :class:`~pconv.PConvUNet`, or with the onnxruntime backend
            an :class:`~pconv.inference.onnx_network.OnnxNetwork`; both have ``preset``
            and ``depth`` and are called as ``model(image, mask) -> (output, _)``.
        weights: the file the network came from (the weights, or the ONNX file).
        metadata: that file's metadata (``images_seen``, ``pconv_preset``, ...).
        device, dtype: where the network runs and its autocast dtype (float32 = none).
        memory_format: the network's and its inputs' (channels-last on CPUs with AVX-512,
            :func:`~pconv.devices.cpu_unet_memory_format`; contiguous elsewhere).
        blend: whether fills are blended into their holes' borders.
        refine, seed: the refinement's default and seed.

    Raises:
        WeightsError: the weights file is missing or unreadable, or (``weights=None``)
            no default model is installed.
        OnnxRuntimeError: the onnxruntime backend cannot run (package missing, bad file).
        ValueError: options that do not go together (``onnx`` without the onnxruntime
            backend, ``weights`` or ``compile`` with it).
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        *,
        precision: str = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        context: int = DEFAULT_CONTEXT,
        compile: bool = False,
        backend: str = "torch",
        onnx: str | os.PathLike | None = None,
        blend: bool = True,
        refine: bool = False,
        seed: int = 0,
    ) -> None:
        _check_backend(backend, weights, onnx, compile)
        check_window_settings(max_pixels, context)
        self.max_pixels, self.context, self.backend, self.blend = max_pixels, context, backend, blend
        self.refine, self.seed = refine, seed
        self.model: PConvUNet | OnnxNetwork
        if backend == "onnxruntime":
            self.model = self._network = OnnxNetwork(onnx)
            self.weights, self.metadata = self.model.path, dict(self.model.metadata)
            self.device, self.dtype = torch.device("cpu"), torch.float32
            self.memory_format = torch.contiguous_format
            return
        self.weights = default_weights() if weights is None else Path(weights)
        self.device = resolve_device(device)
        self.dtype = autocast_dtype(precision, self.device)
        cpu = self.device.type == "cpu"
        self.memory_format = cpu_unet_memory_format() if cpu else torch.contiguous_format
        model, self.metadata = load_weights(self.weights)
        self.model = model.to(self.device, memory_format=self.memory_format).eval()
        self._network = torch.compile(self.model) if compile else self.model

    def __repr__(self) -> str:
        file = "onnx" if self.backend == "onnxruntime" else "weights"
        return (
            f"Inpainter({file}={str(self.weights)!r}, backend={self.backend!r}, "
            f"preset={self.model.preset!r}, depth={self.model.depth}, device={str(self.device)!r}, "
            f"blend={self.blend}, refine={self.refine})"
        )

    def inpaint(
        self,
        image: ImageLike,
        mask: ImageLike,
        *,
        mask_convention: MaskConvention = "white-hole",
        mask_channel: MaskChannel = "auto",
        refine: bool | None = None,
    ) -> ImageLike:
        """Fill the holes of ``image``; returns the same kind of image.

        Args:
            image: a PIL image (grey, RGB, RGBA, 16-bit grey, palette...), a numpy array
                ``(H, W, 3)`` (or ``(H, W)``, ``(H, W, 1|2|4)``) of uint8, uint16 or
                floats in [0, 1], or a tensor ``(C, H, W)`` (C = 1 or 3) of floats in
                [0, 1] or uint8, or a :class:`~pconv.inference.Picture` (from
                :func:`~pconv.inference.read_picture`, metadata kept).
            mask: same size as the image; a PIL image (read as mask files are: white =
                hole, alpha if it varies), or a bool / 0-1 / 0-255 array or tensor
                ``(H, W)``, True / 1 / 255 = hole.
            mask_convention: ``"black-hole"`` for masks whose black / 0 / False is the hole.
            mask_channel: for PIL masks, read ``"alpha"`` or ``"luminance"`` (default auto).
            refine: refine the fills with patch synthesis (default: :attr:`refine`).

        Raises:
            MaskError: the mask is not binary, covers the whole image, or its size
                differs from the image's.
            ValueError: an image type, shape, mode or value range pconv cannot inpaint.
        """
        return self.inpaint_batch(
            [image], [mask], mask_convention=mask_convention, mask_channel=mask_channel, refine=refine
        )[0]

    def inpaint_batch(
        self,
        images: Sequence[ImageLike],
        masks: Sequence[ImageLike],
        *,
        batch_size: int = 8,
        mask_convention: MaskConvention = "white-hole",
        mask_channel: MaskChannel = "auto",
        refine: bool | None = None,
    ) -> list[ImageLike]:
        """:meth:`inpaint` for lists: images of the same size run through the network
        ``batch_size`` at a time; larger-than-``max_pixels`` ones window by window."""
        fill = _Fill(replace_known=False, refine=self.refine if refine is None else refine)
        if len(images) != len(masks):
            raise ValueError(f"got {len(images)} images but {len(masks)} masks")
        jobs = []
        for image, mask in zip(images, masks, strict=True):
            picture, restore = as_picture(image)
            hole = hole_from_user_mask(mask, mask_convention, mask_channel)
            check_mask_size(hole.shape[::-1], picture.size)
            _check_hole(hole)
            jobs.append((picture, hole, restore))
        whole = defaultdict(list)  # (H, W) → jobs inpainted whole, batched together
        for picture, hole, _ in jobs:
            if not hole.any():
                continue
            if hole.size <= self.max_pixels:
                whole[hole.shape].append((picture, hole))
            else:
                self._inpaint_in_windows(picture, hole, fill)
        for group in whole.values():
            for start in range(0, len(group), batch_size):
                self._inpaint_whole(group[start : start + batch_size], fill)
        return [restore(picture) for picture, _, restore in jobs]

    def fill(self, picture: Picture, hole: np.ndarray, *, replace_known: bool = False) -> None:
        """Fill ``picture``'s holes in place: the step under :meth:`inpaint`, without checks.

        Args:
            picture: the image; its colour values change, its alpha does not.
            hole: bool ``(H, W)``, True = hole.
            replace_known: write the network's output over every pixel, not only the
                holes (super-resolution, whose known pixels are estimates too); such
                outputs are neither blended nor refined.
        """
        fill = _Fill(replace_known, refine=self.refine and not replace_known)
        if hole.size <= self.max_pixels:
            self._inpaint_whole([(picture, hole)], fill)
        else:
            self._inpaint_in_windows(picture, hole, fill)

    @torch.inference_mode()
    def predict(self, image: Tensor, mask: Tensor) -> Tensor:
        """The network's raw output: float32 ``(N, 3, H, W)`` in [0, 1] on the CPU.

        ``image`` is ``(N, 3, H, W)`` in [0, 1] (holes may hold anything), ``mask``
        ``(N, 1, H, W)``, 1 = known, 0 = hole (the tensor convention of the model).
        """
        image = image.to(self.device, memory_format=self.memory_format)
        mask = mask.to(self.device, torch.float32, memory_format=self.memory_format)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            output, _ = self._network(image, mask)
        return output.float().clamp_(0.0, 1.0).cpu().contiguous()

    def _output(self, image: Tensor, mask: Tensor, fill: _Fill) -> Tensor:
        """What is written into the picture: :meth:`predict`'s output, refined with patch
        synthesis where ``fill`` asks, and blended into the holes' borders where
        :attr:`blend` asks and the known pixels stay."""
        output = self.predict(image, mask)
        if fill.refine:
            output = synthesize(image, output, mask, seed=self.seed)
        if self.blend and not fill.replace_known:
            output = blend_into_border(image, output, mask)
        return output

    def _inpaint_whole(self, group: list[tuple[Picture, np.ndarray]], fill: _Fill) -> None:
        """Fill same-size pictures in one network pass (in place)."""
        image = torch.stack([torch.from_numpy(picture.rgb()).permute(2, 0, 1) for picture, _ in group])
        mask = torch.cat([hole_to_mask(hole) for _, hole in group])
        output = self._output(image, mask, fill).permute(0, 2, 3, 1).numpy()  # (N, H, W, 3)
        everything = slice(None)
        for (picture, hole), rgb in zip(group, output, strict=True):
            written = np.ones_like(hole) if fill.replace_known else hole
            picture.set_rgb(everything, everything, written, rgb)

    def _inpaint_in_windows(self, picture: Picture, hole: np.ndarray, fill: _Fill) -> None:
        """Fill a large picture window by window (in place); see :mod:`pconv.inference.windows`."""
        plan = plan_windows(hole, max_pixels=self.max_pixels, context=self.context)
        written = np.ones_like(hole) if fill.replace_known else hole
        # Windows overlap in their context: when outputs replace the known pixels too, a
        # window must read the input, not what the windows before it wrote.
        source = Picture(picture.pixels.copy(), picture.info) if fill.replace_known else picture
        for window in plan.windows:
            rows, columns = window.view.rows, window.view.columns
            image = torch.from_numpy(source.rgb(rows, columns)).permute(2, 0, 1)[None]
            mask = hole_to_mask(hole[rows, columns])
            output = self._output(image, mask, fill)[0].permute(1, 2, 0).numpy()
            picture.set_rgb(rows, columns, plan.targets(window, written), output)


@dataclass(frozen=True)
class _Fill:
    """How outputs are written: over every pixel (``replace_known``), refined or not."""

    replace_known: bool
    refine: bool


def _check_backend(backend: str, weights, onnx, compile: bool) -> None:
    if backend not in ("torch", "onnxruntime"):
        raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")
    if backend == "torch" and onnx is not None:
        raise ValueError("an ONNX file runs with backend='onnxruntime' (--backend onnxruntime)")
    if backend == "onnxruntime":
        if onnx is None:
            raise ValueError(
                "the onnxruntime backend needs an ONNX file (--onnx FILE, from pconv export --format onnx)"
            )
        if weights is not None or compile:
            raise ValueError("the onnxruntime backend runs the ONNX file alone: drop the weights and compile")


def _check_hole(hole: np.ndarray) -> None:
    if not check_hole(hole):
        warnings.warn("the mask has no hole: the image is returned unchanged", EmptyMaskWarning, stacklevel=4)
