"""Inpainting networks."""

from pconv.models.unet import PConvUNet, UNetConfig, get_preset, list_presets, register_preset

__all__ = ["PConvUNet", "UNetConfig", "get_preset", "list_presets", "register_preset"]
