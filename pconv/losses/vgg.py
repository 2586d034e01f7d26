"""VGG-16 features up to pool3 for the perceptual and style losses, with explicit input conventions.

Two sets of ImageNet weights are in use, and they expect different inputs:

* ``torchvision``: torchvision's ``vgg16`` weights. RGB in [0, 1], then
  ``(x - mean) / std`` with mean ``(0.485, 0.456, 0.406)`` and std
  ``(0.229, 0.224, 0.225)``.
* ``caffe``: the original Caffe/Keras weights. BGR channel order, range 0–255, minus
  the mean ``(103.939, 116.779, 123.68)`` (B, G, R), no division.

:class:`VGG16Features` always takes RGB in [0, 1] and applies its weights' convention
itself. The convention comes from the weights: a safetensors file states it in its
``input`` metadata (``"caffe: ..."`` or ``"torchvision: ..."``); a PyTorch state-dict
file (``.pth``/``.pt``) is torchvision's own format and convention.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from pconv.files import torch_load_reason

__all__ = [
    "CONVENTIONS",
    "TORCHVISION_VGG16_URL",
    "InputConvention",
    "VGG16Features",
    "VGGWeightsError",
    "load_vgg16_features",
]

TORCHVISION_VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"


class VGGWeightsError(ValueError):
    """VGG weights that are missing, unreadable or of the wrong shape or convention."""


@dataclass(frozen=True)
class InputConvention:
    """How VGG weights expect their input: ``(x[channels] * scale - mean) / std``."""

    name: str
    bgr: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def feature_scale(self) -> float:
        """How much larger VGG activations are with these weights than with torchvision's,
        for the same image: the ratio of the conventions' input scales, ``scale / mean(std)``
        (255 × 0.226 ≈ 57.6 for Caffe). The original (Caffe) VGG-16 weights see inputs that
        much larger than torchvision's retrained ones, and their activations measured about
        58 times larger (MODEL_CARD.md, Loss); Gram matrices scale with the square.
        """
        torchvision = CONVENTIONS["torchvision"]
        return (self.scale / sum(self.std)) / (torchvision.scale / sum(torchvision.std))


CONVENTIONS = {
    "torchvision": InputConvention(
        "torchvision", bgr=False, scale=1.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
    ),
    "caffe": InputConvention(
        "caffe", bgr=True, scale=255.0, mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0)
    ),
}

# torchvision's vgg16().features up to pool3: (in, out) of each 3×3 conv, "M" = 2×2 max pool.
_LAYOUT = ((3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256), (256, 256), (256, 256), "M")


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    for item in _LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(*item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class VGG16Features(nn.Module):
    """Frozen VGG-16 activations after pool1, pool2 and pool3.

    Args:
        convention: the input convention of the weights that will be loaded
            (a key of :data:`CONVENTIONS`).

    ``forward(image)`` takes RGB ``(N, 3, H, W)`` in [0, 1] and returns three tensors
    ``(N, 64, H/2, W/2)``, ``(N, 128, H/4, W/4)``, ``(N, 256, H/8, W/8)``. The
    parameters never require gradients, and the module stays in eval mode.
    State-dict keys follow torchvision (``features.0.weight`` … ``features.14.bias``).
    """

    pool_indices = (4, 9, 16)

    def __init__(self, convention: str = "torchvision") -> None:
        super().__init__()
        if convention not in CONVENTIONS:
            raise VGGWeightsError(
                f"unknown VGG input convention {convention!r}; use one of {list(CONVENTIONS)}"
            )
        self.convention = CONVENTIONS[convention]
        self.features = _features()
        scale = torch.tensor(self.convention.scale) / torch.tensor(self.convention.std)
        self.register_buffer("_scale", scale.view(1, 3, 1, 1), persistent=False)
        shift = torch.tensor(self.convention.mean) / torch.tensor(self.convention.std)
        self.register_buffer("_shift", shift.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()
        # Channels-last convolutions by default: about 30% faster forward and 10% faster
        # forward + backward on a 2-core AVX2 CPU at 256², 2× on AVX-512 (see
        # pconv.devices.training_compute). The input follows the weights' layout, which
        # survives load_state_dict and dtype changes; .to(memory_format=...) changes it.
        self.to(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> VGG16Features:
        return super().train(False)  # a fixed feature extractor: no mode to switch

    def normalize(self, image: Tensor) -> Tensor:
        """RGB [0, 1] → the weights' input convention."""
        if self.convention.bgr:
            image = image.flip(1)
        return image * self._scale.to(image.dtype) - self._shift.to(image.dtype)

    @property
    def memory_format(self) -> torch.memory_format:
        """The layout of the convolution weights, which inputs are converted to."""
        channels_last = self.features[0].weight.is_contiguous(memory_format=torch.channels_last)
        return torch.channels_last if channels_last else torch.contiguous_format

    def forward(self, image: Tensor) -> list[Tensor]:
        x = self.normalize(image).contiguous(memory_format=self.memory_format)
        pools = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.pool_indices:
                pools.append(x)
        return pools


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
            state = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as error:
        raise VGGWeightsError(f"cannot read VGG weights {path}: {error}") from None
    declared = metadata.get("input", "")
    convention = declared.split(":", 1)[0].strip().lower()
    if convention not in CONVENTIONS:
        raise VGGWeightsError(
            f"{path} does not state its input convention: its safetensors metadata needs "
            f"'input' = 'caffe: ...' or 'torchvision: ...' (found {declared!r})"
        )
    return state, convention


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for a bad file
        raise VGGWeightsError(f"cannot read VGG weights {path}: {torch_load_reason(error)}") from None
    if not isinstance(state, dict):
        raise VGGWeightsError(f"{path} is not a state dict")
    return state


def load_vgg16_features(source: str | os.PathLike) -> VGG16Features:
    """VGG-16 features from a weights file or from torchvision's download.

    Args:
        source: a ``.safetensors`` file whose metadata states its convention, a
            PyTorch state-dict file of torchvision's ``vgg16`` (torchvision
            convention; ``classifier.*`` keys are ignored), or ``"torchvision"`` to
            download torchvision's ImageNet weights with
            ``torch.hub.load_state_dict_from_url`` (needs the network once; cached in
            torch's hub folder, checked against the hash in the file name).
    """
    if str(source) == "torchvision":
        state = torch.hub.load_state_dict_from_url(TORCHVISION_VGG16_URL, map_location="cpu", check_hash=True)
        convention = "torchvision"
    else:
        path = Path(source)
        if not path.is_file():
            raise VGGWeightsError(f"VGG weights file {path} does not exist")
        if path.suffix == ".safetensors":
            state, convention = _read_safetensors(path)
        else:
            state, convention = _read_state_dict(path), "torchvision"
    model = VGG16Features(convention)
    wanted = model.state_dict()
    state = {key: value for key, value in state.items() if key in wanted}
    missing = sorted(set(wanted) - set(state))
    if missing:
        raise VGGWeightsError(f"VGG weights {source} lack {', '.join(missing)} (a VGG-16 up to pool3?)")
    for key, value in state.items():
        if value.shape != wanted[key].shape:
            raise VGGWeightsError(f"VGG weight {key} in {source} has shape {tuple(value.shape)}")
    model.load_state_dict(state)
    return model
