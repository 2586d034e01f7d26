"""Choosing the device, the autocast precision and the memory format, for training and inference.

Inference keeps fp32 on every CPU and runs the U-Net in the processor's faster memory
format (:func:`cpu_unet_memory_format`; outputs differ across processors by float
rounding, within one grey level); training picks what is fastest for the processor
(:func:`training_compute`).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "NATIVE_BF16_FLAGS",
    "PRECISIONS",
    "ComputeChoice",
    "autocast_dtype",
    "cpu_description",
    "cpu_flags",
    "cpu_unet_memory_format",
    "precision_name",
    "resolve_device",
    "training_compute",
]

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


#: CPU flags (as Linux names them in /proc/cpuinfo) of instructions that compute in bf16
#: natively: Intel AMX tiles, and AVX-512 BF16 (Intel Cooper Lake and later, AMD Zen 4 and later).
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpuinfo_field(names: tuple[str, ...], cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The first value of a ``/proc/cpuinfo`` field (Linux); None where unknown."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in names:
            return value.strip()
    return None


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags the processor reports (Linux), empty where unknown."""
    return frozenset((_cpuinfo_field(("flags", "Features"), cpuinfo) or "").split())  # x86, Arm


def cpu_description() -> str:
    """The processor, torch's threads and vector capability, and whether it has native bf16,
    e.g. ``AMD EPYC (x86_64), 2 threads, capability AVX512, native bf16: avx512_bf16``."""
    model = _cpuinfo_field(("model name",)) or platform.processor() or "unknown processor"
    native = [flag for flag in NATIVE_BF16_FLAGS if flag in cpu_flags()]
    return (
        f"{model} ({platform.machine()}), {torch.get_num_threads()} threads, capability "
        f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {', '.join(native) or 'none'}"
    )


@dataclass(frozen=True)
class ComputeChoice:
    """How a training run computes: autocast dtype and the U-Net's memory format, and why."""

    dtype: torch.dtype
    memory_format: torch.memory_format
    reason: str

    @property
    def channels_last(self) -> bool:
        return self.memory_format == torch.channels_last

    def describe(self) -> str:
        """e.g. ``bf16 autocast, channels-last (CPU has avx512_bf16: native bf16)``."""
        layout = "channels-last" if self.channels_last else "contiguous"
        return f"{precision_name(self.dtype)}, {layout} ({self.reason})"

    def to_dict(self) -> dict[str, str]:
        """For the run's ``config.json``."""
        return {
            "precision": precision_name(self.dtype),
            "memory_format": "channels_last" if self.channels_last else "contiguous",
            "reason": self.reason,
        }


def training_compute(
    precision: str, device: torch.device, flags: Iterable[str] | None = None
) -> ComputeChoice:
    """The autocast dtype and memory format a training run uses on ``device``.

    * CUDA: precision as :func:`autocast_dtype`, channels-last (unchanged since the
      first release).
    * CPU: ``auto`` is bf16 autocast where the processor computes bf16 natively (one of
      :data:`NATIVE_BF16_FLAGS`; there bf16 makes a training step 1.2–2× faster, and
      VGG-16 2–3×), fp32 elsewhere (emulated bf16 is slower than fp32). The U-Net's
      memory format is :func:`cpu_unet_memory_format`'s. VGG-16 is always
      channels-last (:class:`~pconv.losses.VGG16Features`), faster on both.
    * Other devices (MPS): precision as :func:`autocast_dtype`, contiguous.

    Args:
        flags: the processor's flags (default: :func:`cpu_flags`); tests pass fakes.
    """
    if device.type == "cuda":
        return ComputeChoice(autocast_dtype(precision, device), torch.channels_last, "CUDA")
    if device.type != "cpu":
        return ComputeChoice(autocast_dtype(precision, device), torch.contiguous_format, device.type)
    flags = cpu_flags() if flags is None else frozenset(flags)
    native = [flag for flag in NATIVE_BF16_FLAGS if flag in flags]
    memory_format = cpu_unet_memory_format(flags)
    wide = memory_format == torch.channels_last
    if precision == "auto":
        dtype = torch.bfloat16 if native else torch.float32
    else:
        dtype = autocast_dtype(precision, device)
    reasons = [f"CPU has {native[0]}: native bf16" if native else "CPU without native bf16"]
    reasons.append("AVX-512: channels-last U-Net" if wide else "no AVX-512: contiguous U-Net")
    return ComputeChoice(dtype, memory_format, "; ".join(reasons))


def cpu_unet_memory_format(flags: Iterable[str] | None = None) -> torch.memory_format:
    """The U-Net's faster memory format on this CPU, for training and inference alike:
    channels-last on processors with AVX-512 (training steps 1.5–1.7× faster on AMD Zen 4
    and Intel Xeons; on Zen 4, a 512² fill by the default model 1.9× and a ×2 upscale of
    512² 1.75× faster, the same pixels within one grey level), contiguous elsewhere
    (channels-last training was 1.15× slower on an AVX2-only EPYC; docs/performance.md).

    Args:
        flags: the processor's flags (default: :func:`cpu_flags`); tests pass fakes.
    """
    flags = cpu_flags() if flags is None else frozenset(flags)
    return torch.channels_last if "avx512f" in flags else torch.contiguous_format
