"""Reading training checkpoints: their format, their errors, and :func:`load_checkpoint`.

A checkpoint (written by :func:`pconv.train.checkpoint.save_checkpoint`) is a
``torch.save`` zip of a plain dict: ``format`` and ``version`` (this module's
constants), ``pconv_version``, ``model`` (state dict), ``model_config``
(``PConvUNet(**...)`` rebuilds it), ``optimizer``, ``scaler``, ``step``,
``images_before``, ``images_seen``, ``world_size``, ``config`` (the training
configuration as a dict), ``rng`` and ``best_psnr``. It is read with
``weights_only=True``. Reading lives here, beside the weights files, so that loading a
checkpoint into an :class:`~pconv.Inpainter` does not import the training code.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import torch

from pconv.files import torch_load_reason

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CheckpointError", "load_checkpoint"]

CHECKPOINT_FORMAT = "pconv-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or read."""


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`pconv.train.checkpoint.save_checkpoint`.

    Raises:
        CheckpointError: the file is missing, not a pconv checkpoint, from a newer pconv,
            or damaged: every record's CRC-32 is checked first, because torch reads
            damaged tensor bytes without complaint.
    """
    path = Path(path)
    _check_crcs(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as error:  # a truncated or foreign file raises many types
        raise CheckpointError(f"cannot read checkpoint {path}: {torch_load_reason(error)}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a pconv training checkpoint")
    if checkpoint["version"] > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {checkpoint['version']}; upgrade pconv to read it"
        )
    return checkpoint


def _check_crcs(path: Path) -> None:
    """Raise :class:`CheckpointError` if a record of the zip archive fails its CRC-32
    (a missing file, or one that is not a zip archive, is left to ``torch.load`` to refuse)."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error):  # missing, unreadable, not a zip
        return
    if damaged is not None:
        raise CheckpointError(
            f"checkpoint {path} is damaged: its record {damaged} fails its CRC check "
            "(a bad copy or disk); use another checkpoint"
        )
