"""Training configuration: defaults < config file (TOML) < command-line flags.

The resolved :class:`TrainConfig` is written to ``OUT/config.json`` and into every
checkpoint, so a run can be resumed, and its model rebuilt, from the checkpoint alone.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from pconv.losses import LossWeights
from pconv.superres import SCALES

__all__ = [
    "DEFAULT_VGG_CROP", "RESUMABLE_FIELDS", "STAGE_LEARNING_RATES", "TASKS", "ConfigError", "TrainConfig",
    "load_config_file",
]  # fmt: skip

#: What a run trains the network for: filling holes, or super-resolution as inpainting.
TASKS = ("inpaint", "superres")
#: The paper's learning rates: stage 1 trains with batch norm, stage 2 fine-tunes with the encoder's frozen.
STAGE_LEARNING_RATES = {1: 2e-4, 2: 5e-5}

#: Side of the window around a hole pixel where the perceptual and style terms are
#: computed (pconv.losses.hole_windows); 0 = the whole image, as in the paper.
DEFAULT_VGG_CROP = 64

#: Settings a resumed run may change; everything else must match the checkpoint.
RESUMABLE_FIELDS = frozenset(
    {
        "steps", "lr_decay_steps", "device", "workers", "checkpoint_every", "val_every", "val_limit",
        "log_every", "export_dtype",
    }
)  # fmt: skip


class ConfigError(ValueError):
    """An invalid or contradictory training configuration."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (paths are stored as given)."""

    data: str
    out: str
    val: str | None = None
    val_masks: str | None = None
    masks: str | None = None
    mask_convention: str = "white-hole"
    preset: str | None = None  # None: the init model's, else "paper"
    depth: int | None = None
    crop: int = 256
    batch_size: int = 6
    steps: int = 10_000
    lr: float | None = None
    lr_decay_steps: int = 0
    stage: int = 1
    init: str | None = None
    loss: LossWeights = field(default_factory=LossWeights)
    vgg_weights: str | None = None
    random_vgg: bool = False
    vgg_crop: int = DEFAULT_VGG_CROP  # 0: the paper's whole image
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    workers: int | None = None
    checkpoint_every: int = 1000
    val_every: int = 1000
    val_limit: int = 60
    val_crop: int | None = None  # None: the training crop; fixed for a run (its scores compare)
    log_every: int = 50
    export_dtype: str = "float32"
    task: str = "inpaint"  # or "superres": super-resolution as inpainting (pconv.superres)
    scales: tuple[int, ...] = SCALES  # of the superres task

    def __post_init__(self) -> None:
        checks = {
            "stage must be 1 or 2": self.stage in STAGE_LEARNING_RATES,
            "stage 2 starts from a stage-1 model: give init (--init CHECKPOINT)": self.stage == 1
            or self.init is not None,
            "crop, batch_size, steps, checkpoint_every, val_every and log_every must be positive": min(
                self.crop, self.batch_size, self.steps, self.checkpoint_every, self.val_every, self.log_every
            )
            > 0,
            "lr_decay_steps must be between 0 and steps": 0 <= self.lr_decay_steps <= self.steps,
            "precision must be auto, fp32, bf16 or fp16": self.precision in ("auto", "fp32", "bf16", "fp16"),
            "export_dtype must be float32 or float16": self.export_dtype in ("float32", "float16"),
            "give VGG weights (vgg_weights) or random_vgg, not both": not (
                self.vgg_weights and self.random_vgg
            ),
            "task must be inpaint or superres": self.task in TASKS,
            "vgg_crop must be 0 (the whole image) or at least 8": self.vgg_crop == 0 or self.vgg_crop >= 8,
            f"scales must be some of {SCALES}, and crop and val_crop multiples of each": bool(self.scales)
            and set(self.scales) <= set(SCALES)
            and (
                self.task != "superres"
                or all(
                    size % scale == 0 for size in (self.crop, self.validation_crop) for scale in self.scales
                )
            ),
            "val_crop must be positive": self.val_crop is None or self.val_crop > 0,
        }
        problems = [message for message, ok in checks.items() if not ok]
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def validation_crop(self) -> int:
        """``val_crop``, or the training crop."""
        return self.val_crop if self.val_crop is not None else self.crop

    @property
    def learning_rate(self) -> float:
        """``lr``, or the paper's rate for the stage."""
        return self.lr if self.lr is not None else STAGE_LEARNING_RATES[self.stage]

    def learning_rate_at(self, step: int) -> float:
        """The learning rate of optimizer step ``step + 1``: :attr:`learning_rate`, falling
        linearly towards 0 over the last ``lr_decay_steps`` steps of the run."""
        if step < self.steps - self.lr_decay_steps:
            return self.learning_rate
        return self.learning_rate * (self.steps - step) / self.lr_decay_steps

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Build from plain values (a TOML/JSON table); unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(unknown)}")
        values = _with_tuples(values)
        if isinstance(values.get("loss"), dict):
            try:
                values["loss"] = LossWeights(**values["loss"])
            except TypeError as error:
                raise ConfigError(f"bad [loss] table: {error}") from None
        missing = sorted(name for name in ("data", "out") if name not in values)
        if missing:
            raise ConfigError(f"missing training settings: {', '.join(missing)}")
        return cls(**values)

    def resumed_with(self, overrides: dict) -> TrainConfig:
        """This (saved) config with the settings a resumed run may change."""
        overrides = _with_tuples(overrides)
        fixed = {
            name: value
            for name, value in overrides.items()
            if name not in RESUMABLE_FIELDS and name != "out" and value != getattr(self, name)
        }
        if fixed:
            listed = ", ".join(
                f"{name} (checkpoint: {getattr(self, name)!r}, asked: {fixed[name]!r})" for name in fixed
            )
            raise ConfigError(f"cannot change these settings when resuming: {listed}")
        return replace(self, **{k: v for k, v in overrides.items() if k in RESUMABLE_FIELDS})

    def save(self, path: Path, **resolved) -> None:
        """Write the settings as JSON, with ``resolved`` (e.g. ``compute``: what
        ``precision = "auto"`` chose on this machine) as extra keys, for the record."""
        path.write_text(json.dumps(self.to_dict() | resolved, indent=2) + "\n")


def _with_tuples(values: dict) -> dict:
    """A copy of ``values`` with ``scales`` as a tuple (JSON, TOML and argparse give lists)."""
    values = dict(values)
    if isinstance(values.get("scales"), list):
        values["scales"] = tuple(values["scales"])
    return values


def load_config_file(path: str | Path) -> dict:
    """The settings in a TOML file (top-level keys named as :class:`TrainConfig` fields,
    loss weights in a ``[loss]`` table)."""
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
