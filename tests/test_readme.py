"""The README's Python examples run as written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch, tiny_weights):
    blocks = re.findall(r"^```python\n(.*?)^```$", README.read_text(), flags=re.S | re.M)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)  # the files the examples name
    shutil.copy(tiny_weights, "model.safetensors")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save("photo.jpg")
    hole = np.zeros((48, 64), np.uint8)
    hole[10:20, 10:30] = 255
    Image.fromarray(hole).save("mask.png")
    namespace: dict = {}
    for block in blocks:  # later blocks may use names from earlier ones, as a reader would
        exec(compile(block, str(README), "exec"), namespace)
    with Image.open("photo_filled.png") as filled:
        assert filled.size == (64, 48)
    assert len(namespace["batch"]) == 2
    assert namespace["result"].shape == (1, 3, 333, 517)
    assert namespace["features"].shape == (2, 128, 64, 64)
