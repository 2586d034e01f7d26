"""Training checkpoints: plain dicts written atomically, read with ``weights_only=True``.

A checkpoint holds ``model`` (state dict), ``model_config`` (``PConvUNet(**...)``
rebuilds it), ``optimizer``, ``scaler``, ``step``, ``images_seen``, ``config`` (the
:class:`~pconv.train.config.TrainConfig` as a dict), ``rng`` (Python, NumPy, torch
CPU and CUDA generator states), ``best_psnr`` and ``pconv_version``. It is serialised
in memory, then written to a temporary file, fsynced and renamed over the previous
one, so a kill at any moment leaves the previous complete checkpoint.
"""

from __future__ import annotations

import io
import random
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from pconv.files import atomic_write, torch_load_reason

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "load_checkpoint",
    "restore_rng_state",
    "rng_state",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "pconv-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or read."""


def rng_state() -> dict:
    """The global random generator states (Python, NumPy, torch CPU and CUDA)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), position, has_gauss, gauss),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict) -> None:
    """Undo :func:`rng_state`; CUDA states are restored when the device count matches."""
    random.setstate(state["python"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, checkpoint: dict) -> Path:
    """Write ``checkpoint`` (see the module doc) atomically to ``path``.

    Raises:
        CheckpointError: the file cannot be written (disk full, permissions); the
            previous checkpoint at ``path`` is left as it was.
    """
    from pconv import __version__

    buffer = io.BytesIO()
    torch.save(
        {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "pconv_version": __version__}
        | checkpoint,
        buffer,
    )
    try:
        return atomic_write(path, buffer.getbuffer())
    except OSError as error:
        raise CheckpointError(f"{error.strerror}; the previous checkpoint is unchanged") from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

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
    (a file that is not a zip archive is left to ``torch.load`` to refuse)."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error):
        return
    if damaged is not None:
        raise CheckpointError(
            f"checkpoint {path} is damaged: its record {damaged} fails its CRC check "
            "(a bad copy or disk); use another checkpoint"
        )
