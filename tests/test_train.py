"""Training: learning, exact resume after SIGKILL, DDP on gloo, stage 2, and failures."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pconv.cli import main
from pconv.models import PConvUNet
from pconv.train import (
    CheckpointError,
    ConfigError,
    TrainConfig,
    TrainingError,
    load_checkpoint,
    resume,
    train,
)
from pconv.train.checkpoint import save_checkpoint
from pconv.train.loop import _resolve_architecture
from pconv.weights import load_model, load_weights, read_metadata


def write_images(folder: Path, count: int, size: int = 48, seed: int = 0) -> Path:
    """Smooth synthetic photos: random colour gradients and a few discs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    for index in range(count):
        channels = [
            np.sin(x * rng.uniform(1, 6) + y * rng.uniform(1, 6) + rng.uniform(0, 6)) for _ in range(3)
        ]
        image = (np.stack(channels, -1) + 1) / 2
        for _ in range(3):
            (cx, cy), r = rng.uniform(0, 1, 2), rng.uniform(0.1, 0.3)
            image[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 1, 3)
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"{index:03d}.png")
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("data") / "train", 8)


def tiny_settings(images: Path, out: Path, **changes) -> dict:
    settings = {
        "data": str(images),
        "out": str(out),
        "preset": "tiny",
        "crop": 32,
        "batch_size": 4,
        "steps": 6,
        "random_vgg": True,
        "workers": 0,
        "log_every": 1,
        "checkpoint_every": 2,
    }
    return settings | changes


def cli_flags(settings: dict) -> list[str]:
    flags = []
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        flags += [flag] if value is True else [flag, str(value)]
    return flags


def train_process(settings: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pconv", "train", *cli_flags(settings), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def records(out: Path, kind: str = "train") -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["kind"] == kind]


def assert_same_state(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for key in first:
        if isinstance(first[key], torch.Tensor):
            assert torch.equal(first[key], second[key]), key
        elif isinstance(first[key], dict):
            assert_same_state(first[key], second[key])
        else:
            assert first[key] == second[key], key


def test_a_tiny_model_overfits_a_handful_of_images(tmp_path, images):
    settings = tiny_settings(images, tmp_path / "run", steps=80, lr=3e-3, checkpoint_every=80)
    weights = train(TrainConfig.from_dict(settings))
    losses = [record["total"] for record in records(tmp_path / "run")]
    assert len(losses) == 80
    assert np.mean(losses[-10:]) < np.mean(losses[:2]) / 4, losses
    assert read_metadata(weights)["step"] == "80"
    assert read_metadata(weights)["images_seen"] == "320"
    assert load_model(weights).preset == "tiny"


@pytest.mark.slow  # processes killed and restarted; in-process resumes are tested below
def test_sigkill_at_any_moment_then_resume_matches_an_uninterrupted_run(tmp_path, images):
    steps = 24
    reference_out = tmp_path / "reference"
    windows = {"vgg_crop": 16}  # VGG windows are drawn from the RNG: resuming must redraw them alike
    reference = train_process(
        tiny_settings(images, reference_out, steps=steps, checkpoint_every=100, **windows)
    )
    assert reference.wait(timeout=120) == 0, reference.stdout.read()

    out = tmp_path / "killed"
    settings = tiny_settings(images, out, steps=steps, **windows)
    process, kills, rng = train_process(settings), 0, random.Random(0)
    for round_ in range(3):
        if round_:
            process = train_process(settings, "--resume")
        seen = load_checkpoint(out / "checkpoint.pt")["step"] if (out / "checkpoint.pt").exists() else -1
        while process.poll() is None:  # wait for a new checkpoint, then kill at a random moment
            if (out / "checkpoint.pt").exists() and load_checkpoint(out / "checkpoint.pt")["step"] > seen:
                time.sleep(rng.uniform(0, 0.25))
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        output = process.communicate(timeout=60)[0]
        kills += process.returncode == -signal.SIGKILL
        if round_:
            assert "resuming" in output
        load_checkpoint(out / "checkpoint.pt")  # never corrupt, whenever the kill came
    assert kills >= 2

    final = train_process(settings, "--resume")
    output = final.communicate(timeout=120)[0]
    assert final.returncode == 0, output
    assert f"of {steps}" in output and f"done at step {steps}" in output
    finished, expected = (
        load_checkpoint(out / "checkpoint.pt"),
        load_checkpoint(tmp_path / "reference/checkpoint.pt"),
    )
    assert finished["step"] == expected["step"] == steps
    assert_same_state(finished["model"], expected["model"])  # bit-identical
    assert_same_state(finished["optimizer"], expected["optimizer"])
    logged = [record["step"] for record in records(out)]
    assert logged == list(range(1, steps + 1))  # the log reads as one run
    for record, reference_record in zip(records(out), records(reference_out), strict=True):
        assert record["total"] == reference_record["total"]


@pytest.mark.slow  # torchrun with two processes
def test_two_process_ddp_on_gloo_keeps_ranks_identical(tmp_path, images):
    out = tmp_path / "ddp"
    settings = tiny_settings(images, out, steps=4, batch_size=2, log_every=2)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*command, "-m", "pconv", "train", *cli_flags(settings)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "effective batch size 4 (2 processes × 2)" in result.stdout
    assert "weights identical on all 2 processes" in result.stdout
    assert result.stdout.count("done at step 4") == 1  # rank 0 reports
    assert load_checkpoint(out / "checkpoint.pt")["images_seen"] == 16
    # One process cannot take over a two-process run: the effective batch would change.
    with pytest.raises(ConfigError, match="trained with 2 processes and is resumed with 1"):
        resume(out, {"steps": 6})
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    del checkpoint["world_size"]  # as written before it was saved: told from the images seen
    save_checkpoint(out / "checkpoint.pt", checkpoint)
    with pytest.raises(ConfigError, match="torchrun --nproc-per-node 2 -m pconv train"):
        resume(out, {"steps": 6})


def test_stage_two_keeps_encoder_batch_norm_fixed(tmp_path, images):
    stage1 = train(TrainConfig.from_dict(tiny_settings(images, tmp_path / "s1", steps=3)))
    settings = tiny_settings(images, tmp_path / "s2", steps=3, stage=2, init=str(stage1))
    del settings["preset"]  # taken from the init model
    stage2 = train(TrainConfig.from_dict(settings))
    before, after = load_model(stage1).state_dict(), load_model(stage2).state_dict()
    encoder_bn = [k for k in before if k.startswith("encoder.") and ".bn." in k]
    decoder_bn = [k for k in before if k.startswith("decoder.") and ".bn.running_mean" in k]
    assert encoder_bn and all(torch.equal(before[k], after[k]) for k in encoder_bn)
    assert any(not torch.equal(before[k], after[k]) for k in decoder_bn)
    checkpoint = load_checkpoint(tmp_path / "s2/checkpoint.pt")
    assert checkpoint["optimizer"]["param_groups"][0]["lr"] == 5e-5
    assert read_metadata(stage2)["images_seen"] == str(2 * 3 * 4)  # both stages count


def test_stage_two_refuses_another_architecture(tmp_path, images):
    stage1 = train(TrainConfig.from_dict(tiny_settings(images, tmp_path / "s1", steps=1)))
    settings = tiny_settings(images, tmp_path / "s2", stage=2, init=str(stage1), depth=4)
    with pytest.raises(ConfigError, match="depth 5"):
        train(TrainConfig.from_dict(settings))


def test_a_run_may_start_from_another_preset_only_with_the_same_parameters(tmp_path, images):
    """``mini`` weights start a ``mini-bilinear`` run (it only upsamples differently); ``tiny``'s do not."""
    settings = tiny_settings(images, tmp_path / "b", preset="mini-bilinear", depth=7, init="mini.safetensors")
    config = _resolve_architecture(TrainConfig.from_dict(settings), PConvUNet("mini", 7))
    assert (config.preset, config.depth) == ("mini-bilinear", 7)
    with pytest.raises(
        ConfigError, match="preset 'tiny' depth 5, but this run asks for preset 'mini-bilinear'"
    ):
        _resolve_architecture(TrainConfig.from_dict(settings | {"depth": 5}), PConvUNet("tiny"))


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, images):
    settings = tiny_settings(images, tmp_path / "nan", steps=50, lr=1e12, checkpoint_every=1)
    with pytest.raises(TrainingError, match="not finite at step") as error:
        train(TrainConfig.from_dict(settings))
    checkpoint = load_checkpoint(tmp_path / "nan/checkpoint.pt")
    assert f"step {checkpoint['step'] + 1}" in str(error.value)
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_a_failed_checkpoint_write_is_clear_and_keeps_the_previous_one(tmp_path, images, monkeypatch, capsys):
    out = tmp_path / "full"
    assert main(["train", *cli_flags(tiny_settings(images, out, steps=2))]) == 0
    before = (out / "checkpoint.pt").read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("pconv.files.os.fsync", disk_full)
    assert main(["train", "--out", str(out), "--resume", "--steps", "4"]) == 2
    message = capsys.readouterr().err
    assert "No space left on device" in message and "checkpoint.pt" in message and "unchanged" in message
    assert (out / "checkpoint.pt").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_save_checkpoint_error_type(tmp_path):
    with pytest.raises(CheckpointError, match="cannot write"):
        save_checkpoint(tmp_path / "missing-folder" / "checkpoint.pt", {"step": 1})


def test_a_checkpoint_with_damaged_bytes_is_refused_by_its_crc(tmp_path):
    import zipfile

    path = save_checkpoint(tmp_path / "checkpoint.pt", {"step": 1, "model": {"w": torch.ones(4096)}})
    with zipfile.ZipFile(path) as archive:
        record = max(archive.infolist(), key=lambda info: info.file_size)  # the tensor's bytes
    data = bytearray(path.read_bytes())
    start = record.header_offset + 30 + len(record.filename.encode()) + len(record.extra)
    data[start + 1000 : start + 1004] = b"\xff\xff\xff\x7f"  # a NaN where a 1.0 was
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=r"is damaged: its record .*/data/0 fails its CRC check"):
        load_checkpoint(path)
    resume_error = tmp_path / "run"
    resume_error.mkdir()
    (resume_error / "checkpoint.pt").write_bytes(data)
    with pytest.raises(CheckpointError, match="is damaged"):
        resume(resume_error)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resume", "--crop", "64"], "cannot change these settings when resuming: crop"),
        ([], "already holds a run"),
    ],
)
def test_resuming_and_reusing_a_run_folder_are_guarded(tmp_path, images, capsys, args, message):
    out = tmp_path / "run"
    settings = tiny_settings(images, out, steps=1)
    assert main(["train", *cli_flags(settings)]) == 0
    capsys.readouterr()
    flags = ["--out", str(out), *args] if args else cli_flags(settings)
    assert main(["train", *flags]) == 2
    assert message in capsys.readouterr().err


def test_training_without_vgg_weights_says_how_to_get_them(tmp_path, images, capsys):
    settings = tiny_settings(images, tmp_path / "run")
    del settings["random_vgg"]
    assert main(["train", *cli_flags(settings)]) == 2
    error = capsys.readouterr().err
    assert "--vgg-weights" in error and "--random-vgg" in error and "Traceback" not in error


def test_unwritable_output_folder_is_a_clear_error(tmp_path, images, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", *cli_flags(tiny_settings(images, blocker / "run"))]) == 2
    assert "cannot write to the output folder" in capsys.readouterr().err


def test_flags_override_the_config_file(tmp_path, images):
    config = tmp_path / "train.toml"
    config.write_text(
        f'data = "{images}"\nout = "{tmp_path / "run"}"\npreset = "tiny"\ncrop = 32\nsteps = 1\n'
        "random_vgg = true\nworkers = 0\nbatch_size = 2\n[loss]\nhole = 3.0\n"
    )
    flags = ["--batch-size", "3", "--steps", "2", "--val-crop", "48"]
    assert main(["train", "--config", str(config), *flags]) == 0
    saved = json.loads((tmp_path / "run/config.json").read_text())
    assert saved["batch_size"] == 3 and saved["steps"] == 2 and saved["crop"] == 32
    assert saved["val_crop"] == 48
    assert saved["loss"]["hole"] == 3.0 and saved["loss"]["style"] == 120.0


def test_learning_rate_falls_linearly_over_the_last_decay_steps(tmp_path, images):
    config = TrainConfig(data="d", out="o", steps=10, lr=1e-3, lr_decay_steps=4)
    rates = [config.learning_rate_at(step) for step in range(10)]
    assert rates == pytest.approx([1e-3] * 6 + [1e-3, 7.5e-4, 5e-4, 2.5e-4])
    assert TrainConfig(data="d", out="o", steps=3).learning_rate_at(2) == 2e-4  # default: constant
    with pytest.raises(ConfigError, match="lr_decay_steps"):
        TrainConfig(data="d", out="o", steps=3, lr_decay_steps=4)
    out = tmp_path / "run"
    train(TrainConfig.from_dict(tiny_settings(images, out, steps=4, lr=1e-3, lr_decay_steps=2)))
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in logged if r["kind"] == "train"] == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4])


def test_pixel_terms_alone_train_without_vgg_weights(tmp_path, images):
    settings = tiny_settings(images, tmp_path / "run", steps=2, loss={"perceptual": 0, "style": 0})
    del settings["random_vgg"]
    train(TrainConfig.from_dict(settings))
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "style" not in logged[0] and logged[0]["hole"] > 0
    with pytest.raises(ConfigError, match="VGG-16 weights"):
        train(TrainConfig.from_dict(tiny_settings(images, tmp_path / "other", random_vgg=False)))


def test_unknown_config_keys_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown training settings: colour"):
        TrainConfig.from_dict({"data": "d", "out": "o", "colour": 1})
    with pytest.raises(ConfigError, match="init"):
        TrainConfig.from_dict({"data": "d", "out": "o", "stage": 2})


def test_resuming_with_fewer_steps_than_done_is_refused(tmp_path, images):
    out = tmp_path / "run"
    train(TrainConfig.from_dict(tiny_settings(images, out, steps=4)))
    with pytest.raises(ConfigError, match=r"already at step 4, past --steps 2: give at least 4"):
        resume(out, {"steps": 2})
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 4


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="nothing to resume"):
        resume(tmp_path)


def test_validation_logs_metrics_grids_and_best_weights(tmp_path, images):
    val = write_images(tmp_path / "val", 6, size=80, seed=1)
    out = tmp_path / "run"
    settings = tiny_settings(images, out, steps=4, val=str(val), val_every=2, crop=32, val_crop=48)
    train(TrainConfig.from_dict(settings))
    scores = records(out, "val")
    assert [record["step"] for record in scores] == [2, 4]
    assert {"l1", "psnr", "ssim", "psnr/bucket1", "ssim/bucket6"} <= scores[0].keys()
    assert 0 < scores[-1]["ssim"] < 1 and scores[-1]["psnr"] > 5
    grid = Image.open(out / "samples/step_0000004.png")
    assert grid.size == (4 * 48, 6 * 48)
    assert float(read_metadata(out / "best.safetensors")["val_psnr"]) == max(r["psnr"] for r in scores)
    assert any((out / "tensorboard").iterdir())


def test_export_command_writes_half_precision_weights(tmp_path, images, capsys):
    out = tmp_path / "run"
    train(TrainConfig.from_dict(tiny_settings(images, out, steps=1)))
    target = tmp_path / "half.safetensors"
    assert main(["export", "--weights", str(out / "checkpoint.pt"), "-o", str(target), "--half"]) == 0
    assert "preset tiny" in capsys.readouterr().out
    assert load_model(target).preset == "tiny"
    model, metadata = load_weights(out / "checkpoint.pt")
    assert model.preset == "tiny" and metadata == {"step": "1", "images_seen": "4"}
    assert read_metadata(target)["images_seen"] == "4"


def test_export_keeps_how_the_weights_were_trained(tmp_path, images):
    out = tmp_path / "run"
    train(TrainConfig.from_dict(tiny_settings(images, out, steps=1)))
    source = read_metadata(out / "model.safetensors")
    target = tmp_path / "half.safetensors"
    assert main(["export", "--weights", str(out / "model.safetensors"), "-o", str(target), "--half"]) == 0
    exported = read_metadata(target)
    for key in ("stage", "step", "images_seen", "crop", "training_config", "preset", "depth"):
        assert exported[key] == source[key]


NVIDIA_MASKS = Path(__file__).resolve().parents[2] / "shared" / "data" / "masks" / "nvidia_test"


def test_validation_masks_from_a_folder_follow_the_buckets(tmp_path):
    from pconv.masks import bucket_of, generate_mask, hole_ratio, write_mask
    from pconv.train.validation import ValidationSet

    masks = tmp_path / "masks"
    masks.mkdir()
    for bucket in range(1, 7):
        for border in (False, True):
            hole = generate_mask(256, 256, bucket=bucket, border=border, seed=bucket * 2 + border)
            write_mask(masks / f"{bucket}{int(border)}.png", hole)
    val = write_images(tmp_path / "val", 12, size=256, seed=2)
    validation = ValidationSet.build(val, crop=256, limit=12, masks=masks)
    assert validation.groups.tolist() == [1, 2, 3, 4, 5, 6] * 2
    for mask, bucket in zip(validation.masks, validation.groups, strict=True):
        assert bucket_of(hole_ratio(mask[0].numpy() == 0)) == bucket
    again = ValidationSet.build(val, crop=256, limit=12, masks=masks)
    assert torch.equal(again.masks, validation.masks) and torch.equal(again.images, validation.images)


@pytest.mark.skipif(not NVIDIA_MASKS.exists(), reason="../shared/data/masks is not present (developer data)")
def test_validation_with_the_nvidia_masks(tmp_path):
    from pconv.train.validation import ValidationSet

    val = write_images(tmp_path / "val", 6, size=64, seed=3)
    validation = ValidationSet.build(val, crop=64, limit=6, masks=NVIDIA_MASKS)
    holes = 1 - validation.masks.mean(dim=(1, 2, 3))
    lows = torch.tensor([0.01, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert ((holes > lows - 0.03) & (holes <= lows + 0.13)).all(), holes  # resized 512 → 64


def test_the_compute_choice_follows_the_cpu_and_is_printed_and_recorded(
    tmp_path, images, monkeypatch, capsys
):
    monkeypatch.setattr("pconv.devices.cpu_flags", lambda: frozenset({"avx2", "avx512f", "amx_bf16"}))
    train(TrainConfig.from_dict(tiny_settings(images, tmp_path / "amx", steps=2)))
    compute = json.loads((tmp_path / "amx/config.json").read_text())["compute"]
    assert compute["precision"] == "bf16 autocast" and compute["memory_format"] == "channels_last"
    assert "amx_bf16" in compute["reason"] and "threads" in compute["cpu"]
    assert "bf16 autocast, channels-last (CPU has amx_bf16: native bf16" in capsys.readouterr().out

    monkeypatch.setattr("pconv.devices.cpu_flags", lambda: frozenset({"avx2"}))
    train(TrainConfig.from_dict(tiny_settings(images, tmp_path / "avx2", steps=2)))
    compute = json.loads((tmp_path / "avx2/config.json").read_text())["compute"]
    assert compute["precision"] == "fp32" and compute["memory_format"] == "contiguous"
    # A resumed run decides again, on the machine it runs on.
    monkeypatch.setattr("pconv.devices.cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    resume(tmp_path / "avx2", {"steps": 3})
    compute = json.loads((tmp_path / "avx2/config.json").read_text())["compute"]
    assert compute["precision"] == "bf16 autocast" and compute["memory_format"] == "channels_last"


def test_caffe_vgg_weights_default_to_the_rescaled_paper_weights(tmp_path, images):
    from safetensors.torch import save_file

    from pconv.losses import VGG16Features

    vgg = tmp_path / "vgg.safetensors"
    state = {key: value.contiguous() for key, value in VGG16Features().state_dict().items()}
    save_file(state, vgg, metadata={"input": "caffe: BGR 0..255 minus mean"})
    settings = tiny_settings(images, tmp_path / "run", steps=1, vgg_weights=str(vgg))
    del settings["random_vgg"]
    train(TrainConfig.from_dict(settings))
    saved = json.loads((tmp_path / "run/config.json").read_text())
    assert saved["loss"]["perceptual"] == pytest.approx(8.68e-4, rel=1e-3)
    assert saved["loss"]["style"] == pytest.approx(0.0361, rel=1e-2)
    assert saved["vgg_crop"] == 64
    training_config = json.loads(read_metadata(tmp_path / "run/model.safetensors")["training_config"])
    assert training_config["loss"] == saved["loss"]


def test_runs_from_before_vgg_windows_resume_on_the_whole_image(tmp_path, images):
    out = tmp_path / "run"
    train(TrainConfig.from_dict(tiny_settings(images, out, steps=2, vgg_crop=16)))
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    del checkpoint["config"]["vgg_crop"]  # as written before the setting existed
    save_checkpoint(out / "checkpoint.pt", checkpoint)
    resume(out, {"steps": 3})
    assert json.loads((out / "config.json").read_text())["vgg_crop"] == 0
    with pytest.raises(ConfigError, match="vgg_crop"):
        TrainConfig(data="d", out="o", vgg_crop=4)


def test_data_loads_in_the_training_process_on_a_cpu():
    from pconv.train.loop import _default_workers

    assert _default_workers(torch.device("cpu")) == 0
    assert 1 <= _default_workers(torch.device("cuda")) <= 4
