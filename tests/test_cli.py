"""The installed ``pconv`` command."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch

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


def test_missing_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err
