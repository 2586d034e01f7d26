"""Training: configuration, the loop, checkpoints, multi-process runs."""

from pconv.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pconv.train.config import ConfigError, TrainConfig, load_config_file
from pconv.train.loop import TrainingError, resume, train

__all__ = [
    "CheckpointError",
    "ConfigError",
    "TrainConfig",
    "TrainingError",
    "load_checkpoint",
    "load_config_file",
    "resume",
    "save_checkpoint",
    "train",
]
