"""The installed ``pconv`` command."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import pconv
from pconv.cli import main


def test_console_script_help_lists_commands():
    executable = shutil.which("pconv")
    assert executable, "the pconv console script is not installed"
    result = subprocess.run([executable, "--help"], capture_output=True, text=True, check=True)
    assert "usage: pconv" in result.stdout and "info" in result.stdout


def test_module_entry_point_prints_version():
    result = subprocess.run(
        [sys.executable, "-m", "pconv", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"pconv {pconv.__version__}"


def test_info_reports_versions_devices_and_presets(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"pconv   {pconv.__version__}" in out
    assert f"torch   {torch.__version__}" in out
    assert "cuda" in out and "mps" in out
    assert "paper  depth 8, widths 64,128,256,512,512,512,512,512" in out
    assert "native bf16: " in out  # the processor, and what pconv train picks on it
    assert "train   on the CPU: " in out and ("fp32, " in out or "bf16 autocast, " in out)


def test_missing_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_masks_generate_stats_and_preview(tmp_path, capsys):
    out = tmp_path / "masks"
    args = ["masks", "generate", str(out), "--count", "6", "--bucket", "2", "--no-border", "--size", "96x80"]
    assert main([*args, "--seed", "3"]) == 0
    files = sorted(out.glob("*.png"))
    assert len(files) == 6
    pixels = np.asarray(Image.open(files[0]))
    assert pixels.shape == (80, 96) and set(np.unique(pixels)) == {0, 255}

    capsys.readouterr()
    assert main(["masks", "stats", str(out)]) == 0
    assert "| 2 | (0.10, 0.20] | 6 | 0 | 6 |" in capsys.readouterr().out

    assert main(["masks", "preview", str(out), "-o", str(tmp_path / "sheet.png"), "--columns", "3"]) == 0
    assert Image.open(tmp_path / "sheet.png").size == (3 * 132, 2 * 146)

    assert main([*args, "--seed", "3"]) == 2  # existing files are kept
    assert "already exist" in capsys.readouterr().err
    before = files[0].read_bytes()
    assert main([*args, "--seed", "3", "--overwrite"]) == 0
    assert files[0].read_bytes() == before  # same seed, same masks


def test_masks_stats_reads_the_other_convention(tmp_path, capsys):
    hole = np.zeros((64, 64), bool)
    hole[20:40, 20:40] = True  # ratio 0.098: bucket 1, no border
    Image.fromarray(np.where(hole, 0, 255).astype(np.uint8)).save(tmp_path / "black_hole.png")
    assert main(["masks", "stats", str(tmp_path), "--mask-convention", "black-hole"]) == 0
    assert "| 1 | (0.01, 0.10] | 1 | 0 | 1 |" in capsys.readouterr().out


def test_masks_commands_report_bad_folders(tmp_path, capsys):
    assert main(["masks", "stats", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["masks", "stats", str(tmp_path)]) == 2
    assert "no mask images" in capsys.readouterr().err
    (tmp_path / "broken.png").write_bytes(b"junk")
    assert main(["masks", "stats", str(tmp_path)]) == 2
    assert "cannot read mask" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["masks", "generate", str(tmp_path), "--size", "big"])
    assert "size must be S or WxH" in capsys.readouterr().err


def test_masks_generate_reports_impossible_requests(tmp_path, capsys):
    assert main(["masks", "generate", str(tmp_path), "--bucket", "6", "--no-border", "--size", "48"]) == 2
    assert "too little room" in capsys.readouterr().err


def test_info_names_the_default_model_or_its_absence(capsys, monkeypatch, tmp_path, tiny_weights):
    monkeypatch.setattr("pconv.weights.DEFAULT_WEIGHTS", tmp_path / "absent.safetensors")
    monkeypatch.setattr("pconv.weights.DEFAULT_SUPERRES_WEIGHTS", tmp_path / "absent.safetensors")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "model   none installed (pconv inpaint needs --weights)" in out
    assert "upscale none installed (pconv upscale needs --weights)" in out
    monkeypatch.setattr("pconv.weights.DEFAULT_WEIGHTS", tiny_weights)
    monkeypatch.setattr("pconv.weights.DEFAULT_SUPERRES_WEIGHTS", tiny_weights)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "model   default: preset tiny, depth 5" in out and "upscale default: preset tiny, depth 5" in out


def test_serve_without_the_serve_extra_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    assert main(["serve"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "pconv: error: pconv serve needs uvicorn: pip install 'pconv[serve]'"
    )


def test_serve_checks_its_limits_before_loading_a_model(capsys, monkeypatch):
    pytest.importorskip("fastapi", reason="pconv serve needs the serve extra")
    monkeypatch.setattr("pconv.inference.Inpainter", None)  # calling it would fail: never reached
    assert main(["serve", "--queue-size", "-1"]) == 2
    assert "queue_size must be at least 0, got -1" in capsys.readouterr().err
    assert main(["serve", "--request-timeout", "0"]) == 2
    assert "request_timeout must be positive, got 0.0" in capsys.readouterr().err


def test_every_training_setting_has_its_flag():
    from pconv.cli import build_parser
    from pconv.train import TrainConfig

    parsed = vars(build_parser().parse_args(["train"]))
    assert set(TrainConfig.__dataclass_fields__) <= set(parsed)


def test_training_flags_show_the_defaults_of_the_settings(monkeypatch):
    import argparse
    import dataclasses

    from pconv.cli import build_parser
    from pconv.train import TrainConfig

    def help_of(dest):
        train = next(
            action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)
        ).choices["train"]
        return next(action.help for action in train._actions if action.dest == dest)

    assert help_of("batch_size").endswith("(default 6)")
    assert help_of("scales").endswith("(default 2 4)")
    # The help follows the settings' default: it is read from TrainConfig, not written twice.
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    monkeypatch.setattr(fields["batch_size"], "default", 11)
    assert help_of("batch_size").endswith("(default 11)")
