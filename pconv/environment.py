"""What ``pconv info`` reports: versions, processor and devices, installed models, presets."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from pconv.devices import cpu_description, training_compute
from pconv.models import get_preset, list_presets
from pconv.version import __version__
from pconv.weights import WeightsError, default_superres_weights, default_weights, read_metadata

__all__ = ["environment_report"]


def environment_report() -> str:
    """The lines of ``pconv info``: pconv, torch and Python versions, the CPU and how
    training would run on it, CUDA and MPS devices, the installed default models and the
    model presets."""
    lines = [
        f"pconv   {__version__}",
        f"torch   {torch.__version__}",
        f"python  {platform.python_version()} ({sys.executable})",
        f"cpu     {cpu_description()}",
        f"train   on the CPU: {training_compute('auto', torch.device('cpu')).describe()}",
    ]
    if torch.cuda.is_available():
        lines += [
            f"cuda:{index}  {torch.cuda.get_device_name(index)} (CUDA {torch.version.cuda})"
            for index in range(torch.cuda.device_count())
        ]
    else:
        lines.append("cuda    not available")
    lines.append(f"mps     {'available' if torch.backends.mps.is_available() else 'not available'}")
    lines.append(f"model   {_installed_model(default_weights, 'pconv inpaint')}")
    lines.append(f"upscale {_installed_model(default_superres_weights, 'pconv upscale')}")
    lines.append("presets")
    for name in list_presets():
        config = get_preset(name)
        lines.append(f"  {name:<6} depth {config.depth}, widths {','.join(map(str, config.widths))}")
    return "\n".join(lines)


def _installed_model(locate: Callable[[], Path], command: str) -> str:
    """The model file that ``locate`` finds, described from its header."""
    try:
        path = locate()
    except WeightsError:
        return f"none installed ({command} needs --weights)"
    metadata = read_metadata(path)
    description = f"default: preset {metadata.get('preset')}, depth {metadata.get('depth')}"
    if "images_seen" in metadata:
        description += f", {int(metadata['images_seen']):,} training images seen"
    return f"{description} ({path})"
