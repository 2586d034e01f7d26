"""Safetensors weights files: round trips, metadata, and clear errors."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import save_file

from pconv import PConvUNet
from pconv.weights import WeightsError, load_model, read_metadata, save_weights


def test_float32_round_trip_is_exact_and_carries_metadata(tmp_path, tiny_model):
    model = tiny_model
    path = save_weights(model, tmp_path / "m.safetensors", metadata={"step": 12, "note": "hello"})
    loaded = load_model(path)
    assert not loaded.training and loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    metadata = read_metadata(path)
    assert metadata["preset"] == "tiny" and metadata["depth"] == "5" and metadata["step"] == "12"
    assert json.loads(metadata["widths"]) == [8, 16, 16, 16, 16] and metadata["note"] == "hello"


def test_float16_files_are_half_the_size_and_close(tmp_path):
    torch.manual_seed(0)
    model = PConvUNet("mini", depth=4).eval()
    full = save_weights(model, tmp_path / "full.safetensors")
    half = save_weights(model, tmp_path / "half.safetensors", dtype=torch.float16)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded = load_model(half)
    assert next(loaded.parameters()).dtype == torch.float32
    image, mask = torch.rand(1, 3, 64, 64), (torch.rand(1, 1, 64, 64) > 0.3).float()
    with torch.no_grad():
        torch.testing.assert_close(loaded(image, mask)[0], model(image, mask)[0], atol=2e-3, rtol=1e-2)


def test_depth_other_than_the_presets_default_round_trips(tmp_path):
    model = PConvUNet("tiny", depth=3)
    assert load_model(save_weights(model, tmp_path / "d3.safetensors")).depth == 3


def test_foreign_safetensors_are_rejected(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, path)
    with pytest.raises(WeightsError, match="not a pconv weights file"):
        load_model(path)


def test_mismatched_tensors_are_rejected_in_one_line(tmp_path):
    from safetensors.torch import load_file

    path = save_weights(PConvUNet("tiny"), tmp_path / "m.safetensors")
    metadata, tensors = read_metadata(path), load_file(path)
    save_file({"encoder.0.conv.weight": torch.zeros(1)}, path, metadata=metadata)
    with pytest.raises(WeightsError, match="does not fit") as refused:
        load_model(path)
    assert "\n" not in str(refused.value)
    assert re.search(r"it lacks decoder\.\S+, \S+, \S+ and \d+ more; has encoder\.0\.conv\.weight of shape "
                     r"\(1,\) where \(8, 3, 7, 7\) is needed$", str(refused.value))  # fmt: skip
    del tensors["decoder.4.conv.bias"]
    save_file(tensors | {"extra.weight": torch.zeros(1)}, path, metadata=metadata)
    with pytest.raises(
        WeightsError, match=r"it lacks decoder\.4\.conv\.bias; has unexpected tensors extra\.weight$"
    ):
        load_model(path)


def test_a_pickle_with_code_is_refused_without_torchs_advice(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "pconv-checkpoint", "model": Payload()}, path)
    with pytest.raises(WeightsError) as refused:
        load_model(path)
    message = str(refused.value)
    assert "never loads (they could run code)" in message and "weights_only" not in message
    assert "\n" not in message


def test_unknown_or_changed_presets_are_rejected(tmp_path):
    path = save_weights(PConvUNet("tiny"), tmp_path / "m.safetensors")
    metadata = read_metadata(path)
    from safetensors.torch import load_file

    tensors = load_file(path)
    save_file(tensors, path, metadata=metadata | {"preset": "huge"})
    with pytest.raises(WeightsError, match="cannot build"):
        load_model(path)
    save_file(tensors, path, metadata=metadata | {"widths": "[8, 16, 16, 16, 32]"})
    with pytest.raises(WeightsError, match="differs from this pconv's preset"):
        load_model(path)
    save_file(tensors, path, metadata=metadata | {"strides": "[1, 2, 2, 2, 2]", "base": "cubic"})
    with pytest.raises(
        WeightsError, match=r"strides \[1, 2, 2, 2, 2\] \(here \[2, 2, 2, 2, 2\]\), base cubic"
    ):
        load_model(path)
    # Files written before strides, base and upsampling existed have the paper's.
    save_file(
        tensors,
        path,
        metadata={k: v for k, v in metadata.items() if k not in ("strides", "base", "upsampling")},
    )
    assert load_model(path).strides == (2, 2, 2, 2, 2)


@pytest.mark.parametrize("name", ["missing.safetensors", "garbage.safetensors", "garbage.pt", "photo.png"])
def test_unreadable_files_are_clear_errors(tmp_path, name):
    path = tmp_path / name
    if not name.startswith("missing"):
        path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(WeightsError, match=str(path.name)):
        load_model(path)


def test_inference_from_a_checkpoint_imports_nothing_above_it(tmp_path):
    import subprocess
    import sys

    from pconv.train.checkpoint import save_checkpoint

    model = PConvUNet("tiny")
    path = save_checkpoint(
        tmp_path / "checkpoint.pt",
        {"model": model.state_dict(), "model_config": model.config, "step": 3, "images_seen": 12},
    )
    script = (
        "import sys\n"
        "from pconv import Inpainter\n"
        f"Inpainter({str(path)!r}, 'cpu')\n"
        "above = ('pconv.train', 'pconv.data', 'pconv.eval', 'pconv.losses', 'pconv.serve', 'pconv.cli')\n"
        "print(sorted(m for m in sys.modules if m.startswith(above)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # inference imports only what lies below it
