"""Writing training checkpoints, and the random generator states they carry.

A checkpoint is a plain dict (its keys: :mod:`pconv.checkpoints`, which reads them). It
is serialised in memory, then written to a temporary file, fsynced and renamed over the
previous one, so a kill at any moment leaves the previous complete checkpoint.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import torch

from pconv.checkpoints import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointError, load_checkpoint
from pconv.files import atomic_write
from pconv.version import __version__

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "load_checkpoint",
    "restore_rng_state",
    "rng_state",
    "save_checkpoint",
]  # the format, its errors and load_checkpoint come from pconv.checkpoints


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
