"""Classical inpainting methods to compare with: OpenCV Telea and Navier–Stokes,
scikit-image's biharmonic inpainting, and PatchMatch.

Each baseline takes ``image``, uint8 ``(H, W, 3)`` RGB, and ``hole``, bool ``(H, W)``
with True = hole, and returns uint8 ``(H, W, 3)`` RGB. They need optional packages
(``pip install pconv[eval]``; PatchMatch: ``pip install pypatchmatch``); a missing one
is a :class:`MissingDependencyError` naming what to install.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["BASELINES", "MissingDependencyError", "get_baseline"]

Baseline = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: OpenCV's neighbourhood radius for Telea and Navier–Stokes.
INPAINT_RADIUS = 3
#: PatchMatch's patch size.
PATCH_SIZE = 3


class MissingDependencyError(ValueError):
    """A method needs a package that is not installed."""


def _require(module: str, package: str, method: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(f"method {method!r} needs {package}: pip install {package}") from None


def _opencv(image: np.ndarray, hole: np.ndarray, flag_name: str, method: str) -> np.ndarray:
    cv2 = _require(*_DEPENDENCIES[method], method)
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    result = cv2.inpaint(bgr, hole.astype(np.uint8) * 255, INPAINT_RADIUS, getattr(cv2, flag_name))
    return np.ascontiguousarray(result[:, :, ::-1])


def telea(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """OpenCV ``cv2.inpaint`` with ``INPAINT_TELEA`` (fast marching), radius 3."""
    return _opencv(image, hole, "INPAINT_TELEA", "telea")


def navier_stokes(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """OpenCV ``cv2.inpaint`` with ``INPAINT_NS`` (Navier–Stokes), radius 3."""
    return _opencv(image, hole, "INPAINT_NS", "ns")


def biharmonic(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """scikit-image ``inpaint_biharmonic`` per channel, rounded back to uint8."""
    restoration = _require(*_DEPENDENCIES["biharmonic"], "biharmonic")
    result = restoration.inpaint_biharmonic(image, hole, channel_axis=-1)  # floats in [0, 1]
    return np.rint(np.clip(result, 0, 1) * 255).astype(np.uint8)


def patchmatch(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """PatchMatch (the ``pypatchmatch`` package), patch size 3."""
    module = _require(*_DEPENDENCIES["patchmatch"], "patchmatch")
    return module.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255, patch_size=PATCH_SIZE)


BASELINES: dict[str, Baseline] = {
    "telea": telea,
    "ns": navier_stokes,
    "biharmonic": biharmonic,
    "patchmatch": patchmatch,
}
#: The module each baseline imports and the package that provides it.
_DEPENDENCIES = {
    "telea": ("cv2", "opencv-python-headless"),
    "ns": ("cv2", "opencv-python-headless"),
    "biharmonic": ("skimage.restoration", "scikit-image"),
    "patchmatch": ("patchmatch.patch_match", "pypatchmatch"),
}


def get_baseline(name: str) -> Baseline:
    """The baseline called ``name``, its dependency checked now rather than mid-run.

    Raises:
        ValueError: no baseline has that name.
        MissingDependencyError: its package is not installed.
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    _require(*_DEPENDENCIES[name], name)
    return BASELINES[name]
