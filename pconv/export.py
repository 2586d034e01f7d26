"""Exporting a trained U-Net for deployment: ONNX and TorchScript (``pconv export``).

The exported graph is :meth:`pconv.PConvUNet.forward_aligned`:

- inputs ``image`` ``(N, 3, H, W)`` float32 in [0, 1] (values in holes do not matter)
  and ``mask`` ``(N, 1, H, W)`` float32, **1 = known, 0 = hole**;
- output ``output`` ``(N, 3, H, W)``, the raw prediction (combine it with the input:
  known pixels from ``image``, holes from ``output``);
- H and W must be multiples of ``2**depth`` (256 for the default model). The padding
  stays outside the graph: pad with hole (mask 0) to the next multiple and crop the
  result back, as :func:`pconv.pad_to_multiple` does and as ``pconv inpaint --backend
  onnxruntime`` does for you.

A *dynamic* export accepts any batch size and any such H and W; a fixed-size export
only ``height × width`` (any batch). ONNX files use opset :data:`ONNX_OPSET` and carry
``pconv_preset``, ``pconv_depth``, ``pconv_multiple`` and ``pconv_size`` (``dynamic``
or ``HxW``) in their metadata; TorchScript files carry the same in ``pconv.json``.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from pconv.models import PConvUNet

__all__ = ["ONNX_OPSET", "ExportError", "ExportedUNet", "export_onnx", "export_torchscript", "metadata_for"]

#: The ONNX opset of exported files.
ONNX_OPSET = 18


class ExportError(ValueError):
    """An export that cannot be done as asked (size, missing optional package)."""


class ExportedUNet(nn.Module):
    """``output = net(image, mask)``: the graph that is exported (see the module docstring)."""

    def __init__(self, model: PConvUNet) -> None:
        super().__init__()
        self.model = model.float().eval()  # float32 in, float32 out, batch norm frozen

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        return self.model.forward_aligned(image, mask)[0]


def metadata_for(model: PConvUNet, size: tuple[int, int] | None) -> dict[str, str]:
    """What an exported file records about its network; ``size`` is ``(H, W)`` or None (dynamic)."""
    return {
        "pconv_preset": model.preset,
        "pconv_depth": str(model.depth),
        "pconv_multiple": str(model.multiple),
        "pconv_size": "dynamic" if size is None else f"{size[0]}x{size[1]}",
        "pconv_inputs": "image (N,3,H,W) float in [0,1]; mask (N,1,H,W) float, 1 = known, 0 = hole",
    }


def export_onnx(model: PConvUNet, path: str | os.PathLike, size: tuple[int, int] | None = None) -> Path:
    """Write ``model`` as an ONNX file; ``size`` ``(H, W)`` fixes the spatial size, None keeps it dynamic.

    Raises:
        ExportError: ``size`` is not a multiple of ``2**depth``, or the ``onnx`` and
            ``onnxscript`` packages are missing (``pip install 'pconv[onnx]'``).
    """
    _require("onnx", "onnxscript")
    import onnx

    network, example = _prepared(model, size)
    free_axes = (0,) if size is not None else (0, 2, 3)  # the batch is always free
    dims = dict.fromkeys(free_axes, torch.export.Dim.DYNAMIC)
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)  # not the exporter's notes about torchvision's operators
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nor its deprecation and progress chatter
            program = torch.onnx.export(
                network,
                example,
                input_names=["image", "mask"],
                output_names=["output"],
                opset_version=ONNX_OPSET,
                dynamic_shapes={"image": dims, "mask": dims},
                dynamo=True,
                verbose=False,
            )
    finally:
        onnx_logger.setLevel(level)
    proto = program.model_proto
    for key, value in metadata_for(model, size).items():
        proto.metadata_props.add(key=key, value=value)
    path = Path(path)
    onnx.save(proto, str(path))
    return path


def export_torchscript(
    model: PConvUNet, path: str | os.PathLike, size: tuple[int, int] | None = None
) -> Path:
    """Write ``model`` as a TorchScript file (``torch.jit.load`` reads it back).

    The traced graph works at any batch size and any H and W that are multiples of
    ``2**depth``; ``size`` is recorded in the metadata (the graph is the same).

    Raises:
        ExportError: ``size`` is not a multiple of ``2**depth``.
    """
    network, example = _prepared(model, size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        traced = torch.jit.trace(network, example)
        path = Path(path)
        torch.jit.save(traced, str(path), _extra_files={"pconv.json": json.dumps(metadata_for(model, size))})
    return path


def _prepared(model: PConvUNet, size: tuple[int, int] | None) -> tuple[ExportedUNet, tuple[Tensor, Tensor]]:
    """The export wrapper (float32, eval, CPU) and an example input of ``size`` (or 2·multiple square)."""
    if model.base != "none":
        raise ExportError(
            f"preset {model.preset!r} adds its output to an interpolation whose scale is read from "
            "each mask; a traced graph would keep the example's: export inpainting models only"
        )
    multiple = model.multiple
    if size is not None and (min(size) < 1 or size[0] % multiple or size[1] % multiple):
        raise ExportError(
            f"height and width must be positive multiples of {multiple} (the product of this "
            f"depth-{model.depth} model's strides), got {size[0]}×{size[1]}"
        )
    height, width = size if size is not None else (2 * multiple, 2 * multiple)
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, height, width, generator=generator)
    mask = (torch.rand(2, 1, height, width, generator=generator) > 0.3).float()
    return ExportedUNet(copy.deepcopy(model).cpu()), (image, mask)


def _require(*packages: str) -> None:
    """Raise :class:`ExportError` naming the install command if a package is missing."""
    missing = []
    for name in packages:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportError(
            f"ONNX export needs the optional package(s) {', '.join(missing)}: pip install 'pconv[onnx]'"
        )
