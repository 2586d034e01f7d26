"""The training loop: the paper's two-stage schedule, exact resume, mixed precision, DDP.

Run layout under ``out``: ``config.json``, ``checkpoint.pt`` (the latest, replaced
atomically), ``metrics.jsonl``, ``tensorboard/``, ``samples/step_NNNNNNN.png``
(validation grids), ``best.safetensors`` (best validation PSNR) and
``model.safetensors`` (the weights at the end).
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from pconv.data import EpochStream, StepSampler
from pconv.devices import cpu_description, resolve_device, training_compute
from pconv.losses import InpaintingLoss, VGG16Features, load_vgg16_features
from pconv.models import PConvUNet, UNetConfig, get_preset
from pconv.train.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from pconv.train.config import ConfigError, TrainConfig
from pconv.train.distributed import (
    Distributed,
    all_ranks_true,
    check_replicas_identical,
    mean_over_ranks,
    setup_distributed,
)
from pconv.train.logger import RunLogger, save_png
from pconv.train.tasks import task_of
from pconv.weights import load_weights, save_weights

__all__ = ["MISSING_VGG_MESSAGE", "TrainingError", "resume", "train"]

MISSING_VGG_MESSAGE = (
    "the perceptual and style losses need ImageNet VGG-16 weights; give one of: "
    "--vgg-weights FILE.safetensors (with its input convention in the metadata, e.g. "
    "vgg16_pool3_caffe.safetensors), --vgg-weights vgg16-397923af.pth (torchvision's state dict), "
    "--vgg-weights torchvision (download torchvision's weights once, ~530 MB), "
    "or --random-vgg for smoke tests (random features: not a real perceptual loss)"
)

CHECKPOINT_NAME = "checkpoint.pt"


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


def train(config: TrainConfig) -> Path:
    """Run a new training run into ``config.out``; returns the exported weights file.

    Under ``torchrun`` every process calls this; rank 0 logs, validates and writes files.

    Raises:
        ConfigError: ``config.out`` already holds a run, or cannot be written.
    """
    out = Path(config.out)
    if (out / CHECKPOINT_NAME).exists():
        raise ConfigError(
            f"{out} already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it, "
            "or choose another --out"
        )
    _check_writable(out)
    return _run(config, checkpoint=None)


def resume(out: str | Path, overrides: dict | None = None) -> Path:
    """Continue the run in ``out`` from its latest checkpoint, exactly where it stopped.

    ``overrides`` may change the settings in :data:`~pconv.train.config.RESUMABLE_FIELDS`
    (e.g. a larger ``steps``); any other setting must equal the checkpoint's.
    """
    path = Path(out) / CHECKPOINT_NAME
    if not path.exists():
        raise ConfigError(f"nothing to resume: {path} does not exist")
    checkpoint = load_checkpoint(path)
    # Runs from before vgg_crop existed computed VGG on the whole image.
    saved = {"vgg_crop": 0} | checkpoint["config"]
    config = TrainConfig.from_dict(saved).resumed_with(overrides or {})
    if config.steps < checkpoint["step"]:
        raise ConfigError(
            f"the run in {out} is already at step {checkpoint['step']}, past --steps {config.steps}: "
            f"give at least {checkpoint['step']} (more steps continue it)"
        )
    return _run(replace(config, out=str(out)), checkpoint)


def _run(config: TrainConfig, checkpoint: dict | None) -> Path:
    device = resolve_device(config.device)
    context = setup_distributed(device.type)
    if context.enabled and device.type == "cuda":
        device = torch.device("cuda", context.local_rank)
    trainer = None
    try:
        trainer = Trainer(config, device, context, checkpoint)
        path = trainer.run()
        if context.enabled:
            # No process tears down while another still gathers or exports: a process that
            # destroyed its group early aborted at exit now and then (gloo, CPU).
            dist.barrier()
        return path
    finally:
        if context.enabled:
            if trainer is not None:
                trainer.ddp = None  # DDP's reducer holds the process group: release it first
            dist.destroy_process_group()


class Trainer:
    """One training run, new (``checkpoint`` None) or resumed; see :func:`train`."""

    def __init__(
        self, config: TrainConfig, device: torch.device, context: Distributed, checkpoint: dict | None
    ) -> None:
        self.out, self.device, self.context = Path(config.out), device, context
        init_model, self.images_before = None, 0  # images seen by the init model's training
        if checkpoint is not None:
            _check_processes(checkpoint, context.world_size)
            self.images_before = checkpoint["images_before"]
        elif config.init is not None:
            init_model, metadata = load_weights(config.init)
            self.images_before = int(metadata.get("images_seen", 0))
        if checkpoint is None:
            config = _resolve_architecture(config, init_model)
        self.config, self.task = config, task_of(config)
        self.step = checkpoint["step"] if checkpoint else 0
        self.best_psnr = checkpoint["best_psnr"] if checkpoint else -math.inf
        self.compute = training_compute(config.precision, device)
        self.precision = self.compute.dtype

        torch.manual_seed(config.seed)
        self.model = PConvUNet(config.preset, config.depth).to(device)
        if checkpoint is not None:
            self.model.load_state_dict(checkpoint["model"])
        elif init_model is not None:
            self.model.load_state_dict(init_model.state_dict())
        if config.stage == 2:
            self.model.freeze_encoder_bn()
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.model.to(memory_format=self.compute.memory_format)
        self.criterion = InpaintingLoss(_build_vgg(config), config.loss, config.vgg_crop).to(device)
        # Draws the loss's VGG windows, reseeded from (seed, step, rank) every step, so
        # that a resumed run draws the same windows without a saved state.
        self.window_generator = torch.Generator(device)
        # The perceptual and style weights as used (the paper's in the VGG's convention
        # where not given), so that config.json and the checkpoints state them.
        self.config = config = replace(config, loss=self.criterion.weights)
        self.optimizer = torch.optim.Adam(
            [p for p in self.model.parameters() if p.requires_grad], lr=config.learning_rate
        )
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == torch.float16)
        if checkpoint is not None:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self.scaler.load_state_dict(checkpoint["scaler"])
            restore_rng_state(checkpoint["rng"])
        self.ddp = (
            DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
            if context.enabled
            else None
        )
        self.loader = self._loader()
        self.validation = self.task.validation_set(config) if config.val and context.is_main else None
        if context.is_main:
            config.save(self.out / "config.json", compute=self._compute_record())
        self.logger = RunLogger(self.out, start_step=self.step, enabled=context.is_main)
        self._announce(checkpoint)

    def _loader(self) -> torch.utils.data.DataLoader:
        config = self.config
        dataset = self.task.dataset(config)
        workers = config.workers if config.workers is not None else _default_workers(self.device)
        sampler = StepSampler(
            config.batch_size,
            rank=self.context.rank,
            world_size=self.context.world_size,
            start_step=self.step,
        )
        return torch.utils.data.DataLoader(
            EpochStream(dataset, config.seed),
            batch_size=config.batch_size,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
        )

    def _announce(self, checkpoint: dict | None) -> None:
        if not self.context.is_main:
            return
        config = self.config
        parameters = sum(p.numel() for p in self.model.parameters())
        effective = config.batch_size * self.context.world_size
        print(
            f"stage {config.stage}: preset {config.preset} (depth {self.model.depth}, "
            f"{parameters:,} parameters), {config.crop}px crops, lr {config.learning_rate:g}, "
            f"{self._loss_description()}"
        )
        print(f"{self.compute.describe()} on {self.device}")
        print(
            f"effective batch size {effective} ({self.context.world_size} process"
            f"{'es' if self.context.world_size > 1 else ''} × {config.batch_size})"
        )
        if checkpoint is not None:
            print(f"resuming {self.out / CHECKPOINT_NAME} at step {self.step} of {config.steps}")
        elif config.init is not None:
            print(f"starting from the weights of {config.init}")

    def _compute_record(self) -> dict[str, str]:
        record = self.compute.to_dict()
        if self.device.type == "cpu":
            record["cpu"] = cpu_description()
        return record

    def _loss_description(self) -> str:
        weights = self.criterion.weights
        if not weights.uses_vgg:
            return "pixel terms only (no VGG)"
        window = f"{self.config.vgg_crop}px windows at holes" if self.config.vgg_crop else "whole images"
        return f"perceptual {weights.perceptual:.3g} and style {weights.style:.3g} on {window}"

    # -- training --------------------------------------------------------------------------

    @property
    def images_seen(self) -> int:
        """Images seen by this run's model since its first step, including the ``init`` model's."""
        return self.images_before + self.step * self.config.batch_size * self.context.world_size

    def run(self) -> Path:
        config = self.config
        progress = tqdm(
            total=config.steps, initial=self.step, disable=not self.context.is_main or None, unit="step"
        )
        losses = _LossAverages(self.images_seen)
        try:
            for batch in self.loader:
                if self.step >= config.steps:
                    break
                losses.add(self._train_step(*self.task.network_inputs(batch)))
                self.step += 1
                progress.update()
                if self.step % config.log_every == 0 or self.step == config.steps:
                    self._log_training(progress, losses.close(self.images_seen))
                if config.val and (self.step % config.val_every == 0 or self.step == config.steps):
                    self._validate()
                if self.step % config.checkpoint_every == 0 or self.step == config.steps:
                    self._save_checkpoint()
        finally:
            progress.close()
            self.logger.close()
        return self._finish()

    def _train_step(
        self, images: torch.Tensor, masks: torch.Tensor, inputs: torch.Tensor
    ) -> dict[str, float]:
        """One optimizer step on a batch (the task's network inputs); returns the loss terms."""
        images, masks, inputs = (
            tensor.to(self.device, non_blocking=True, memory_format=self.compute.memory_format)
            for tensor in (images, masks, inputs)
        )
        model = self.ddp or self.model
        context = self.context
        self.window_generator.manual_seed(
            self.config.seed * 1_000_003 + self.step * context.world_size + context.rank
        )
        with torch.autocast(self.device.type, dtype=self.precision, enabled=self.precision != torch.float32):
            output, _ = model(inputs, masks)
            terms = self.criterion(output, images, masks, self.window_generator)
        total = terms["total"]
        if not all_ranks_true(bool(torch.isfinite(total)), self.device, self.context):
            values = ", ".join(f"{name} {value.item():.4g}" for name, value in terms.items())
            raise TrainingError(
                f"the loss is not finite at step {self.step + 1} ({values}); stopping. The last good "
                f"checkpoint is {self.out / CHECKPOINT_NAME} (lower --lr, or use --precision fp32 or bf16)"
            )
        self.scaler.scale(total).backward()
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.learning_rate_at(self.step)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return {name: value.item() for name, value in terms.items()}

    # -- logging, validation, checkpoints ----------------------------------------------

    def _log_training(self, progress: tqdm, averages: dict[str, float]) -> None:
        """Log the window's loss terms, averaged over the processes (a collective)."""
        rate = averages.pop("images_per_s")  # already counts every process's images
        averages = mean_over_ranks(averages, self.device, self.context) | {"images_per_s": rate}
        if not self.context.is_main:
            return
        lr = self.optimizer.param_groups[0]["lr"]
        self.logger.scalars(self.step, "train", averages | {"lr": lr, "images_seen": self.images_seen})
        terms = "  ".join(f"{name} {value:.4g}" for name, value in averages.items() if name != "images_per_s")
        progress.set_postfix(loss=f"{averages['total']:.4g}", img_s=f"{averages['images_per_s']:.1f}")
        progress.write(f"step {self.step}/{self.config.steps}  {terms}  {averages['images_per_s']:.1f} img/s")

    def _validate(self) -> None:
        if self.validation is None:
            return
        scores = self.validation.evaluate(self.model, self.device)
        self.logger.scalars(self.step, "val", scores)
        grid = self.validation.grid(self.model, self.device)
        self.logger.image(self.step, "val/grid (input, output, composite, truth)", grid)
        samples = self.out / "samples"
        samples.mkdir(exist_ok=True)
        save_png(grid, samples / f"step_{self.step:07d}.png")
        tqdm.write(
            f"validation at step {self.step}: L1 {scores['l1']:.3f}%  PSNR {scores['psnr']:.2f} dB  "
            f"SSIM {scores['ssim']:.4f}" + (f"  detail {scores['detail']:.3f}" if "detail" in scores else "")
        )
        if scores["psnr"] > self.best_psnr:
            self.best_psnr = scores["psnr"]
            self._export(
                self.out / "best.safetensors", {"val_psnr": scores["psnr"], "val_ssim": scores["ssim"]}
            )

    def _save_checkpoint(self) -> None:
        if not self.context.is_main:
            return
        save_checkpoint(
            self.out / CHECKPOINT_NAME,
            {
                "model": self.model.state_dict(),
                "model_config": self.model.config,
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "step": self.step,
                "images_before": self.images_before,
                "world_size": self.context.world_size,
                "images_seen": self.images_seen,
                "best_psnr": self.best_psnr,
                "config": self.config.to_dict(),
                "rng": rng_state(),
            },
        )

    def _export(self, path: Path, extra: dict | None = None) -> Path:
        config = self.config
        metadata = self.task.metadata(config) | {
            "stage": config.stage,
            "step": self.step,
            "images_seen": self.images_seen,
            "crop": config.crop,
            "training_config": config.to_dict(),
        }
        dtype = torch.float16 if config.export_dtype == "float16" else torch.float32
        return save_weights(self.model, path, dtype=dtype, metadata=metadata | (extra or {}))

    def _finish(self) -> Path:
        identical = check_replicas_identical(self.model, self.device, self.context)
        if not identical:
            raise TrainingError("the processes ended with different weights (a DDP synchronisation bug)")
        path = self.out / "model.safetensors"
        if self.context.is_main:
            if self.context.enabled:
                print(f"weights identical on all {self.context.world_size} processes")
            self._export(path)
            print(f"done at step {self.step} ({self.images_seen:,} images seen); weights: {path}")
        return path


class _LossAverages:
    """Loss terms averaged over the steps since the last log, and images per second."""

    def __init__(self, images_seen: int) -> None:
        self._reset(images_seen)

    def _reset(self, images_seen: int) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.steps, self.images, self.started = 0, images_seen, time.perf_counter()

    def add(self, terms: dict[str, float]) -> None:
        for name, value in terms.items():
            self.sums[name] += value
        self.steps += 1

    def close(self, images_seen: int) -> dict[str, float]:
        """The averages since the last call (plus ``images_per_s``), then start a new window."""
        averages = {name: total / self.steps for name, total in self.sums.items()}
        averages["images_per_s"] = (images_seen - self.images) / (time.perf_counter() - self.started)
        self._reset(images_seen)
        return averages


def _check_processes(checkpoint: dict, world_size: int) -> None:
    """Refuse to resume a run with another number of processes: the effective batch size,
    the data order and the count of images seen would all change under it."""
    saved = checkpoint.get("world_size")
    if saved is None and checkpoint["step"] > 0:  # checkpoints from before it was saved
        per_step = checkpoint["config"]["batch_size"] * checkpoint["step"]
        saved = (checkpoint["images_seen"] - checkpoint["images_before"]) // per_step
    if saved is not None and saved != world_size:
        command = f"torchrun --nproc-per-node {saved} -m pconv train" if saved > 1 else "pconv train"
        raise ConfigError(
            f"this run was trained with {saved} process{'es' if saved > 1 else ''} and is resumed with "
            f"{world_size}, which would change its effective batch size and data order; resume it "
            f"with {command} ... --resume (or start a new run with --init from its weights)"
        )


def _default_workers(device: torch.device) -> int:
    """Data-loading processes when ``workers`` is not given: none on a CPU, where they would
    take cores from the training threads (on 2 cores, 0, 1 and 2 workers gave the same
    images/s within 5 %, docs/performance.md); up to 4 beside a GPU."""
    return 0 if device.type == "cpu" else min(4, os.cpu_count() or 1)


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".pconv-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"cannot write to the output folder {out}: {error.strerror or error}") from None


def _resolve_architecture(config: TrainConfig, init_model: PConvUNet | None) -> TrainConfig:
    """Resolve ``preset``/``depth``: from the ``init`` model when not given, else the paper's.

    A run may start from a model of another preset whose parameters are the same (e.g.
    ``mini`` weights for ``mini-bilinear``, which only upsamples differently).
    """
    if init_model is None:
        return replace(config, preset=config.preset or "paper")
    architecture = init_model.config
    preset, depth = config.preset or architecture["preset"], config.depth or architecture["depth"]
    try:
        same = _same_parameters(get_preset(preset), get_preset(architecture["preset"]))
    except ValueError as error:  # an unknown preset
        raise ConfigError(str(error)) from None
    if depth != architecture["depth"] or not same:
        raise ConfigError(
            f"{config.init} is preset {architecture['preset']!r} depth {architecture['depth']}, "
            f"but this run asks for preset {preset!r} depth {depth}, whose parameters differ"
        )
    return replace(config, preset=preset, depth=depth)


def _same_parameters(a: UNetConfig, b: UNetConfig) -> bool:
    """Whether two presets have the same parameters (they may differ in upsampling)."""
    return (a.widths, a.kernel_sizes, a.strides, a.base) == (b.widths, b.kernel_sizes, b.strides, b.base)


def _build_vgg(config: TrainConfig) -> VGG16Features | None:
    if not config.loss.uses_vgg:
        return None  # the pixel terms alone: VGG would never run
    if config.random_vgg:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            return VGG16Features()
    if config.vgg_weights is None:
        raise ConfigError(MISSING_VGG_MESSAGE)
    return load_vgg16_features(config.vgg_weights)
