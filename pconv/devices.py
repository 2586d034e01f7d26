"""Choosing the device and the autocast precision, for training and inference alike."""

from __future__ import annotations

import torch

__all__ = ["PRECISIONS", "autocast_dtype", "precision_name", "resolve_device"]

#: Names accepted by :func:`autocast_dtype`.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or ``None``) → CUDA if available, else MPS, else CPU; anything else as given.

    Raises:
        ValueError: ``name`` is not a device torch knows, or that device is not available.
    """
    if name is None or name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} asked for, but MPS is not available here")
    return device


def autocast_dtype(name: str, device: torch.device) -> torch.dtype:
    """The autocast dtype of precision ``name`` (float32 = no autocast).

    ``auto`` is bf16 on CUDA (fp16 where the GPU has no bf16) and fp32 elsewhere (on
    CPUs autocast is slower than fp32 on most processors).
    """
    if name == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    try:
        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
    except KeyError:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}") from None


def precision_name(dtype: torch.dtype) -> str:
    """``fp32``, ``bf16 autocast`` or ``fp16 autocast``."""
    return {torch.float32: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}[dtype]
