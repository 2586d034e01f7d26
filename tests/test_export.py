"""ONNX and TorchScript export: parity with PyTorch, dynamic and fixed sizes, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pconv import Inpainter
from pconv.cli import main
from pconv.export import ONNX_OPSET, ExportedUNet, ExportError, export_onnx, export_torchscript
from pconv.inference.onnx_network import OnnxNetwork, OnnxRuntimeError
from pconv.masks.generate import generate_mask
from pconv.weights import load_model

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx extra: pip install 'pconv[onnx]'")
onnxruntime = pytest.importorskip(
    "onnxruntime", reason="the ONNX backend needs onnxruntime: pip install 'pconv[onnx]'"
)
pytestmark = pytest.mark.slow  # exporting takes tens of seconds; test_inpainter covers the torch path

EXAMPLE = Path(__file__).parent.parent / "examples" / "coffee.png"


def real_batch(batch: int, height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of the example photo and irregular masks (1 = known), float32."""
    photo = torch.from_numpy(np.array(Image.open(EXAMPLE).convert("RGB"))).permute(2, 0, 1).float() / 255
    images = torch.stack([photo[:, 20 * i : 20 * i + height, 30 * i : 30 * i + width] for i in range(batch)])
    holes = [generate_mask(height, width, bucket=1 + (seed + i) % 6, seed=seed + i) for i in range(batch)]
    masks = torch.from_numpy(~np.stack(holes)).float()[:, None]
    return images.contiguous(), masks


@pytest.fixture(scope="module")
def onnx_file(tiny_weights, tmp_path_factory) -> Path:
    """The tiny model exported by the command line, with dynamic sizes."""
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    assert main(["export", "--format", "onnx", "--weights", str(tiny_weights), "-o", str(path)]) == 0
    return path


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 64, 64), (2, 96, 128), (3, 160, 32)])
def test_onnxruntime_matches_pytorch_at_several_sizes(onnx_file, tiny_weights, batch, height, width):
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    image, mask = real_batch(batch, height, width, seed=height)
    (output,) = session.run(["output"], {"image": image.numpy(), "mask": mask.numpy()})
    with torch.no_grad():
        expected = ExportedUNet(load_model(tiny_weights))(image, mask)
    assert output.shape == (batch, 3, height, width)
    np.testing.assert_allclose(output, expected.numpy(), rtol=0, atol=1e-4)


def test_onnx_file_names_inputs_outputs_opset_and_metadata(onnx_file):
    model = onnx.load(str(onnx_file))
    assert [i.name for i in model.graph.input] == ["image", "mask"]
    assert [o.name for o in model.graph.output] == ["output"]
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == ONNX_OPSET
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["pconv_preset"] == "tiny" and metadata["pconv_multiple"] == "32"
    assert metadata["pconv_size"] == "dynamic"


def test_fixed_size_export_runs_at_its_size_and_says_so_for_others(tiny_weights, tmp_path):
    path = export_onnx(load_model(tiny_weights), tmp_path / "fixed.onnx", size=(64, 96))
    network = OnnxNetwork(path)
    image, mask = real_batch(3, 64, 96)
    assert network(image, mask)[0].shape == (3, 3, 64, 96)  # any batch
    assert network(*real_batch(1, 50, 90))[0].shape == (1, 3, 50, 90)  # padded to 64×96, cropped back
    with pytest.raises(OnnxRuntimeError, match=r"exported for 64x96 inputs, but this image needs 96x96"):
        network(*real_batch(1, 70, 96))


def test_sizes_that_are_not_multiples_of_2_to_the_depth_are_refused(tiny_weights, tmp_path):
    with pytest.raises(ExportError, match="multiples of 32"):
        export_onnx(load_model(tiny_weights), tmp_path / "bad.onnx", size=(64, 100))
    with pytest.raises(ExportError, match="multiples of 32"):
        export_torchscript(load_model(tiny_weights), tmp_path / "bad.pt", size=(48, 64))


def test_torchscript_export_matches_pytorch_at_several_sizes(tiny_weights, tmp_path):
    assert (
        main(
            [
                "export",
                "--format",
                "torchscript",
                "--weights",
                str(tiny_weights),
                "-o",
                str(tmp_path / "t.pt"),
            ]
        )
        == 0
    )
    extra = {"pconv.json": ""}
    scripted = torch.jit.load(str(tmp_path / "t.pt"), _extra_files=extra)
    assert b'"pconv_multiple": "32"' in extra["pconv.json"]
    reference = ExportedUNet(load_model(tiny_weights))
    for batch, height, width in [(1, 64, 64), (2, 96, 128), (1, 32, 160)]:
        image, mask = real_batch(batch, height, width)
        with torch.no_grad():
            torch.testing.assert_close(scripted(image, mask), reference(image, mask), rtol=0, atol=1e-5)


def test_inpaint_with_onnxruntime_matches_the_torch_backend(onnx_file, tiny_weights, tmp_path):
    """Same pre- and post-processing: an odd-sized photo is padded, run and cropped alike."""
    image_path, mask_path = tmp_path / "photo.png", tmp_path / "mask.png"
    Image.open(EXAMPLE).convert("RGB").crop((0, 0, 150, 101)).save(image_path)
    hole = generate_mask(101, 150, bucket=3, seed=4)
    Image.fromarray(np.where(hole, 255, 0).astype(np.uint8)).save(mask_path)
    common = ["inpaint", str(image_path), "--mask", str(mask_path)]
    assert (
        main([*common, "-o", str(tmp_path / "ort.png"), "--backend", "onnxruntime", "--onnx", str(onnx_file)])
        == 0
    )
    assert main([*common, "-o", str(tmp_path / "torch.png"), "--weights", str(tiny_weights)]) == 0
    ours, theirs, original = (
        np.asarray(Image.open(p), dtype=int)
        for p in (tmp_path / "ort.png", tmp_path / "torch.png", image_path)
    )
    assert np.abs(ours - theirs).max() <= 1
    np.testing.assert_array_equal(ours[~hole], original[~hole])
    assert (ours[hole] != original[hole]).any()


def test_both_backends_give_an_inpainter_the_same_attributes(onnx_file, tiny_weights):
    torch_backend = Inpainter(tiny_weights, "cpu")
    onnx_backend = Inpainter(backend="onnxruntime", onnx=onnx_file)
    for inpainter in (torch_backend, onnx_backend):
        assert (inpainter.model.preset, inpainter.model.depth) == ("tiny", 5)
        assert inpainter.weights.is_file() and isinstance(inpainter.metadata, dict)
        assert (inpainter.device.type, inpainter.dtype) == ("cpu", torch.float32)
    assert (torch_backend.backend, onnx_backend.backend) == ("torch", "onnxruntime")
    assert onnx_backend.weights == onnx_file and onnx_backend.metadata["pconv_preset"] == "tiny"
    assert repr(onnx_backend).startswith(
        f"Inpainter(onnx={str(onnx_file)!r}, backend='onnxruntime', preset='tiny'"
    )
    image, mask = real_batch(1, 64, 64)
    torch.testing.assert_close(
        onnx_backend.predict(image, mask), torch_backend.predict(image, mask), atol=2e-5, rtol=0
    )


def test_missing_optional_packages_are_named(monkeypatch, tiny_weights, tmp_path, onnx_file):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(OnnxRuntimeError, match=r"pip install 'pconv\[onnx\]'"):
        Inpainter(backend="onnxruntime", onnx=onnx_file)
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ExportError, match=r"onnxscript: pip install 'pconv\[onnx\]'"):
        export_onnx(load_model(tiny_weights), tmp_path / "x.onnx")


def test_files_that_are_not_pconv_exports_are_refused(onnx_file, tmp_path):
    stripped = onnx.load(str(onnx_file))
    del stripped.metadata_props[:]
    onnx.save(stripped, str(tmp_path / "other.onnx"))
    with pytest.raises(OnnxRuntimeError, match="not written by `pconv export"):
        OnnxNetwork(tmp_path / "other.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(OnnxRuntimeError, match="not a readable ONNX model"):
        OnnxNetwork(tmp_path / "junk.onnx")


def test_options_that_do_not_go_together(onnx_file, tiny_weights, tmp_path, capsys):
    with pytest.raises(ValueError, match="needs an ONNX file"):
        Inpainter(backend="onnxruntime")
    with pytest.raises(ValueError, match="backend='onnxruntime'"):
        Inpainter(tiny_weights, onnx=onnx_file)
    with pytest.raises(ValueError, match="runs the ONNX file alone"):
        Inpainter(tiny_weights, backend="onnxruntime", onnx=onnx_file)
    out = str(tmp_path / "x.onnx")
    assert main(["export", "--format", "onnx", "--weights", str(tiny_weights), "-o", out, "--half"]) == 2
    assert "--half is for --format safetensors" in capsys.readouterr().err
    assert (
        main(["export", "--format", "onnx", "--weights", str(tiny_weights), "-o", out, "--height", "64"]) == 2
    )
    assert "--height and --width together" in capsys.readouterr().err
