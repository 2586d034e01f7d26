"""Model weights files: safetensors with the architecture in the header.

A weights file holds a :class:`~pconv.models.PConvUNet` state dict (float32 or
float16) and string metadata: ``format`` (``"pconv-unet"``), ``preset``, ``depth``,
``in_channels``, the preset's ``widths``, ``kernel_sizes``, ``strides``, ``base`` and
``upsampling`` (checked on load; files without the last three have the paper's),
``pconv_version``, and whatever the writer adds (training step, images seen, stage,
the training config as JSON). :func:`load_model` also reads the full training
checkpoints written by ``pconv train``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from pconv.checkpoints import CheckpointError, load_checkpoint
from pconv.files import atomic_write
from pconv.models import PConvUNet, UNetConfig, get_preset
from pconv.version import __version__

__all__ = [
    "DEFAULT_SUPERRES_WEIGHTS",
    "DEFAULT_WEIGHTS",
    "WEIGHTS_FORMAT",
    "WeightsError",
    "default_superres_weights",
    "default_weights",
    "load_model",
    "load_weights",
    "provenance",
    "read_metadata",
    "save_weights",
    "task_of",
]

WEIGHTS_FORMAT = "pconv-unet"
#: Where the default model is installed (package data); see :func:`default_weights`.
DEFAULT_WEIGHTS = Path(__file__).parent / "assets" / "default.safetensors"
#: Where the super-resolution model is installed; see :func:`default_superres_weights`.
DEFAULT_SUPERRES_WEIGHTS = Path(__file__).parent / "assets" / "superres.safetensors"


class WeightsError(ValueError):
    """A weights file that cannot be read or does not fit this version of pconv."""


#: Metadata keys :func:`save_weights` writes for every model.
_WRITTEN_BY_SAVE = frozenset(
    {"format", "preset", "depth", "in_channels", "widths", "kernel_sizes", "strides", "base", "upsampling"}
    | {"pconv_version"}
)


def _architecture(model: PConvUNet) -> dict[str, str]:
    preset = get_preset(model.preset)
    return {
        "format": WEIGHTS_FORMAT,
        "preset": model.preset,
        "depth": str(model.depth),
        "in_channels": str(model.in_channels),
        "widths": json.dumps(list(preset.widths)),
        "kernel_sizes": json.dumps(list(preset.kernel_sizes)),
        "strides": json.dumps(list(preset.strides)),
        "base": preset.base,
        "upsampling": preset.upsampling,
    }


def save_weights(
    model: PConvUNet,
    path: str | os.PathLike,
    *,
    dtype: torch.dtype = torch.float32,
    metadata: dict[str, object] | None = None,
) -> Path:
    """Write ``model``'s weights as safetensors (atomically), floats cast to ``dtype``.

    ``metadata`` values are stored as strings (dicts and lists as JSON).
    """
    from safetensors.torch import save

    tensors = {
        key: (value.to(dtype) if value.is_floating_point() else value).detach().cpu().contiguous()
        for key, value in model.state_dict().items()
    }
    header = {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in (metadata or {}).items()
    }
    header |= _architecture(model) | {"pconv_version": __version__}
    return atomic_write(path, save(tensors, metadata=header))


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a weights file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            return dict(file.metadata() or {})
    except (SafetensorError, OSError) as error:
        raise WeightsError(f"cannot read weights {path}: {error}") from None


def provenance(metadata: dict[str, str]) -> dict[str, str]:
    """The entries of a weights file's ``metadata`` that describe how it was made (training
    step, images seen, config, validation scores): everything but the architecture and
    the pconv version, which :func:`save_weights` writes itself."""
    return {key: value for key, value in metadata.items() if key not in _WRITTEN_BY_SAVE}


def _model_from_metadata(metadata: dict[str, str], path: Path) -> PConvUNet:
    if metadata.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(
            f"{path} is not a pconv weights file (its header has no format={WEIGHTS_FORMAT!r})"
        )
    try:
        preset = get_preset(metadata["preset"])
        # Files from before strides, base and upsampling existed have the paper's (UNetConfig's defaults).
        paper = UNetConfig(preset.widths, preset.kernel_sizes, preset.depth)
        saved = {
            "widths": json.loads(metadata["widths"]),
            "kernel_sizes": json.loads(metadata["kernel_sizes"]),
            "strides": json.loads(metadata["strides"]) if "strides" in metadata else list(paper.strides),
            "base": metadata.get("base", paper.base),
            "upsampling": metadata.get("upsampling", paper.upsampling),
        }
        model = PConvUNet(
            metadata["preset"], int(metadata["depth"]), in_channels=int(metadata["in_channels"])
        )
    except (KeyError, ValueError) as error:
        raise WeightsError(f"{path} describes an architecture this pconv cannot build: {error}") from None
    ours = {name: list(value) if isinstance(value, tuple) else value for name, value in vars(preset).items()}
    differences = [f"{name} {saved[name]} (here {ours[name]})" for name in saved if saved[name] != ours[name]]
    if differences:
        raise WeightsError(
            f"{path} was trained with preset {metadata['preset']!r} of {', '.join(differences)}, "
            "which differs from this pconv's preset of that name"
        )
    return model


def _load_safetensors(path: Path) -> tuple[PConvUNet, dict[str, str]]:
    from safetensors.torch import load_file

    metadata = read_metadata(path)
    model = _model_from_metadata(metadata, path)
    state = load_file(str(path))
    expected = model.state_dict()
    mismatch = _state_mismatch(state, expected)
    if mismatch:
        raise WeightsError(f"{path} does not fit its declared architecture: it {mismatch}")
    model.load_state_dict({key: value.to(expected[key].dtype) for key, value in state.items()})
    return model, metadata


def _state_mismatch(state: dict, expected: dict) -> str | None:
    """What keeps ``state`` from loading into a model whose state dict is ``expected``, in one
    line (``lacks …; has unexpected …; has x of shape …``), or None."""

    def listed(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{key} of shape {tuple(state[key].shape)} where {tuple(expected[key].shape)} is needed"
        for key in sorted(set(state) & set(expected))
        if state[key].shape != expected[key].shape
    ]
    problems = [f"lacks {listed(missing)}"] if missing else []
    problems += [f"has unexpected tensors {listed(unexpected)}"] if unexpected else []
    problems += [f"has {listed(shapes)}"] if shapes else []
    return "; ".join(problems) or None


def _load_checkpoint(path: Path) -> tuple[PConvUNet, dict[str, str]]:
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as error:
        raise WeightsError(str(error)) from None
    model = PConvUNet(**checkpoint["model_config"])
    model.load_state_dict(checkpoint["model"])
    config = checkpoint.get("config", {})
    metadata = {"step": str(checkpoint["step"]), "images_seen": str(checkpoint["images_seen"])}
    if config.get("task") == "superres":
        metadata |= {"task": "superres", "scales": json.dumps(list(config["scales"]))}
    return model, metadata


def load_weights(path: str | os.PathLike) -> tuple[PConvUNet, dict[str, str]]:
    """A :class:`PConvUNet` in eval mode on the CPU and the file's string metadata, from a
    ``.safetensors`` weights file or a training checkpoint (``.pt``: ``step`` and
    ``images_seen`` only), reading the file once."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    if path.suffix not in (".safetensors", ".pt"):
        raise WeightsError(f"{path} is neither a .safetensors weights file nor a training checkpoint (.pt)")
    model, metadata = _load_safetensors(path) if path.suffix == ".safetensors" else _load_checkpoint(path)
    return model.eval(), metadata


def default_weights() -> Path:
    """The default (inpainting) model's weights file, installed with the package.

    Raises:
        WeightsError: this installation has no default model.
    """
    return _installed(
        DEFAULT_WEIGHTS,
        "default model",
        "give a weights file: --weights FILE.safetensors (Python: Inpainter(weights=...)), "
        "such as the model.safetensors that `pconv train` writes",
    )


def default_superres_weights() -> Path:
    """The super-resolution model's weights file (``pconv upscale``), installed with the package.

    Raises:
        WeightsError: this installation has no super-resolution model.
    """
    return _installed(
        DEFAULT_SUPERRES_WEIGHTS,
        "super-resolution model",
        "give a weights file trained with `pconv train --task superres`: --weights FILE.safetensors "
        "(Python: Upscaler(weights=...))",
    )


def _installed(path: Path, what: str, hint: str) -> Path:
    if not path.is_file():
        raise WeightsError(f"no {what} is installed with this pconv ({path} is missing); {hint}")
    return path


def task_of(metadata: dict[str, str]) -> str:
    """What a weights file's model was trained for: ``"inpaint"`` or ``"superres"``."""
    return metadata.get("task", "inpaint")  # files from before super-resolution are inpainting models


def load_model(path: str | os.PathLike) -> PConvUNet:
    """A :class:`PConvUNet` in eval mode on the CPU, from a ``.safetensors`` weights file
    or a training checkpoint (``.pt``)."""
    return load_weights(path)[0]
