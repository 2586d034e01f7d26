"""Running an exported ONNX U-Net with onnxruntime, with the pre- and post-processing of
the PyTorch path (``pconv inpaint --backend onnxruntime --onnx FILE``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pconv.functional import pad_to_multiple

__all__ = ["OnnxNetwork", "OnnxRuntimeError"]


class OnnxRuntimeError(ValueError):
    """onnxruntime is missing, or the ONNX file is not a pconv export or cannot run this input."""


class OnnxNetwork:
    """An ONNX file written by ``pconv export --format onnx``, run on the CPU by onnxruntime.

    Called like :class:`~pconv.PConvUNet` (``image`` ``(N, 3, H, W)`` in [0, 1] and
    ``mask`` ``(N, 1, H, W)``, 1 = known, any H and W), and like it returns ``(output,
    output_mask)``: the output ``(N, 3, H, W)`` and None (the exported graph has no
    mask output). Inputs are padded with hole to the file's multiple and cropped back,
    exactly as :meth:`pconv.PConvUNet.forward` does. ``preset`` and ``depth`` describe
    the exported U-Net, as on a :class:`~pconv.PConvUNet`.

    Raises:
        OnnxRuntimeError: onnxruntime is not installed, the file cannot be read or has
            no pconv metadata, or (when called) a fixed-size file gets another size.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise OnnxRuntimeError(
                "the onnxruntime backend needs the optional package onnxruntime: pip install 'pconv[onnx]'"
            ) from None
        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxRuntimeError(f"ONNX file {self.path} does not exist")
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types
            raise OnnxRuntimeError(f"{self.path} is not a readable ONNX model: {error}") from None
        self.metadata = self.session.get_modelmeta().custom_metadata_map
        if "pconv_multiple" not in self.metadata:
            raise OnnxRuntimeError(f"{self.path} was not written by `pconv export --format onnx`")
        self.multiple = int(self.metadata["pconv_multiple"])
        self.size = self.metadata.get("pconv_size", "dynamic")
        self.preset = self.metadata.get("pconv_preset", "unknown")
        self.depth = int(self.metadata.get("pconv_depth", 0))

    def __call__(self, image: Tensor, mask: Tensor) -> tuple[Tensor, None]:
        height, width = image.shape[-2:]
        image, mask, (left, _, top, _) = pad_to_multiple(image.float(), mask.float(), self.multiple)
        padded = f"{image.shape[-2]}x{image.shape[-1]}"
        if self.size not in ("dynamic", padded):
            raise OnnxRuntimeError(
                f"{self.path} was exported for {self.size} inputs, but this image needs {padded} "
                f"({height}×{width} padded to a multiple of {self.multiple}); export with --dynamic"
            )
        inputs = {"image": image.cpu().numpy(), "mask": mask.cpu().numpy()}
        (output,) = self.session.run(["output"], inputs)
        output = torch.from_numpy(np.ascontiguousarray(output))[..., top : top + height, left : left + width]
        return output, None

    def __repr__(self) -> str:
        return f"OnnxNetwork({str(self.path)!r}, size={self.size!r})"
