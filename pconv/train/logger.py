"""Run logs: ``metrics.jsonl`` (always) and TensorBoard (when the ``tensorboard`` package is installed).

Every record is one JSON line ``{"step": …, "kind": "train" | "val", …values}``. A
resumed run first drops the records (and TensorBoard events) written after the
checkpoint it resumes from, so the logs read as one uninterrupted run.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["RunLogger", "save_png"]


class RunLogger:
    """Writes scalars and images of a run under ``out`` (only on the main process)."""

    def __init__(self, out: Path, *, start_step: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.metrics_path = out / "metrics.jsonl"
        self.writer = None
        if not enabled:
            return
        self._truncate_after(start_step)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("TensorBoard is not installed (pip install 'pconv[train]'): logging to metrics.jsonl only")
        else:
            self.writer = SummaryWriter(
                str(out / "tensorboard"), purge_step=start_step + 1 if start_step else None
            )

    def _truncate_after(self, step: int) -> None:
        if not self.metrics_path.exists():
            return
        lines = self.metrics_path.read_text().splitlines()
        kept = [line for line in lines if (logged := _step_of(line)) is not None and logged <= step]
        self.metrics_path.write_text("".join(line + "\n" for line in kept))

    def scalars(self, step: int, kind: str, values: dict[str, float]) -> None:
        """Append a record and write each value to TensorBoard as ``kind/name``."""
        if not self.enabled:
            return
        with open(self.metrics_path, "a") as file:
            file.write(json.dumps({"step": step, "kind": kind} | values) + "\n")
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"{kind}/{name}", value, step)

    def image(self, step: int, tag: str, image: Tensor) -> None:
        """A ``(3, H, W)`` image in [0, 1] to TensorBoard."""
        if self.enabled and self.writer is not None:
            self.writer.add_image(tag, image.clamp(0, 1), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _step_of(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None  # a line cut short by a kill


def save_png(image: Tensor, path: Path) -> None:
    """A ``(3, H, W)`` image in [0, 1] as an 8-bit PNG."""
    from PIL import Image

    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(path)
