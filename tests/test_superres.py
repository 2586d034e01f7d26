"""Super-resolution as inpainting: the grid, the data, training, the Upscaler, the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pconv.cli import main
from pconv.data import SuperResolutionDataset
from pconv.eval.upscaling import get_upscaler, score
from pconv.export import ExportError, export_torchscript
from pconv.inference import Upscaler
from pconv.models import PConvUNet
from pconv.models.interpolation import grid_scales, interpolate_known_grid
from pconv.superres import downscale, grid_offset, known_grid, modcrop, sparse_canvas
from pconv.train import TrainConfig, train
from pconv.train.config import TASKS, ConfigError
from pconv.train.tasks import TASKS_BY_NAME
from pconv.train.validation import SuperResolutionValidationSet
from pconv.weights import WeightsError, read_metadata, save_weights

EXAMPLE = Path(__file__).parent.parent / "examples" / "coffee.png"


@pytest.fixture(scope="module")
def superres_weights(tmp_path_factory):
    """A seeded tiny model saved as a super-resolution model for ×2 and ×4."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("superres") / "tiny_sr.safetensors"
    return save_weights(PConvUNet("tiny").eval(), path, metadata={"task": "superres", "scales": [2, 4]})


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Eight 96×80 crops of the example photo."""
    folder = tmp_path_factory.mktemp("photos")
    image = Image.open(EXAMPLE).convert("RGB")
    for i in range(8):
        image.crop((40 * i, 30 + 20 * (i % 3), 40 * i + 96, 110 + 20 * (i % 3))).save(folder / f"p{i}.png")
    return folder


def test_each_low_resolution_pixel_sits_at_its_cells_offset():
    assert grid_offset(2) == 0 and grid_offset(4) == 1
    grid = known_grid(8, 12, 4)
    assert grid.sum() == 2 * 3 and np.argwhere(grid).tolist() == [[r, c] for r in (1, 5) for c in (1, 5, 9)]
    low = np.arange(2 * 3 * 3, dtype=np.uint16).reshape(2, 3, 3)
    canvas, hole = sparse_canvas(low, 2)
    assert canvas.shape == (4, 6, 3) and canvas.dtype == np.uint16
    np.testing.assert_array_equal(canvas[0::2, 0::2], low)
    assert not canvas[hole].any() and (~hole).sum() == 6
    with pytest.raises(ValueError, match="scale must be one of 2, 4, got 3"):
        grid_offset(3)
    with pytest.raises(ValueError, match="multiple of 4"):
        known_grid(8, 10, 4)


def canvas_tensors(low: np.ndarray, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(image, mask)`` tensors ``(1, C, H, W)``, ``(1, 1, H, W)`` of ``low``'s canvas (float32)."""
    canvas, hole = sparse_canvas(low, scale)
    image = torch.from_numpy(canvas.astype(np.float32)).permute(2, 0, 1)[None]
    return image, torch.from_numpy(~hole).float()[None, None]


def pillow_bicubic(low: np.ndarray, scale: int) -> np.ndarray:
    """Each channel of float ``low`` ``(h, w, C)`` upscaled by Pillow's BICUBIC, ``(C, H, W)``."""
    size = (low.shape[1] * scale, low.shape[0] * scale)
    return np.stack([np.asarray(Image.fromarray(plane).resize(size, Image.Resampling.BICUBIC))
                     for plane in low.transpose(2, 0, 1)])  # fmt: skip


def test_the_known_grid_interpolated_is_pillows_bicubic_upscale():
    """Normalised convolution with the cubic kernel, borders included, in a batch of ×2 and ×4."""
    low = np.random.default_rng(0).random((12, 10, 3), dtype=np.float32)
    (image2, mask2), (image4, mask4) = canvas_tensors(low[:, :], 2), canvas_tensors(low[:6, :5], 4)
    assert grid_scales(torch.cat([mask2, mask4])) == [2, 4]
    batch = interpolate_known_grid(torch.cat([image2, image4]), torch.cat([mask2, mask4]))
    np.testing.assert_allclose(batch[0].numpy(), pillow_bicubic(low, 2), atol=1e-5)
    np.testing.assert_allclose(batch[1].numpy(), pillow_bicubic(low[:6, :5], 4), atol=1e-5)


def test_the_superres_preset_corrects_bicubic_with_a_full_resolution_level(tmp_path):
    """An untrained model's correction is zero: it upscales like Pillow's bicubic (Upscaler too)."""
    model = PConvUNet("superres").eval()
    assert model.base == "cubic" and model.strides == (1, 2, 2) and model.multiple == 4
    low = np.random.default_rng(1).random((9, 7, 3), dtype=np.float32)
    image, mask = canvas_tensors(low, 2)
    with torch.no_grad():
        output, output_mask = model(image, mask)
    assert output.shape == image.shape and bool(output_mask.all())
    np.testing.assert_allclose(output[0].numpy(), pillow_bicubic(low, 2), atol=1e-5)
    for shape in ((1, 20, 3), (3, 3, 3), (1, 1, 3)):  # canvases the network pads
        small = np.random.default_rng(3).random(shape, dtype=np.float32)
        with torch.no_grad():
            output, _ = model(*canvas_tensors(small, 2))
        np.testing.assert_allclose(output[0].numpy(), pillow_bicubic(small, 2), atol=1e-5)
    with pytest.raises(ExportError, match="scale is read from each mask"):
        export_torchscript(model, tmp_path / "superres.pt")
    path = save_weights(model, tmp_path / "sr.safetensors", metadata={"task": "superres", "scales": [2, 4]})
    upscaler = Upscaler(path, "cpu", max_pixels=80 * 80, context=8)  # windows
    photo = np.random.default_rng(2).integers(0, 256, (30, 26, 3), dtype=np.uint8)
    upscaled = upscaler.upscale(photo, 4)
    expected = np.rint(np.clip(pillow_bicubic(photo.astype(np.float32), 4).transpose(1, 2, 0), 0, 255))
    assert upscaled.shape == (120, 104, 3) and np.abs(upscaled.astype(float) - expected).max() <= 1


def test_downscale_crops_to_a_multiple_and_uses_antialiased_bicubic():
    image = Image.open(EXAMPLE).convert("RGB").crop((0, 0, 101, 67))
    assert modcrop(image, 4).size == (100, 64)
    low = downscale(image, 4)
    expected = image.crop((0, 0, 100, 64)).resize((25, 16), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(np.asarray(low), np.asarray(expected))
    with pytest.raises(ValueError, match="too small"):
        downscale(image.crop((0, 0, 3, 3)), 4)


def test_dataset_items_are_the_crop_its_grid_and_its_canvas(photos):
    dataset = SuperResolutionDataset(photos, crop_size=64, train=False)
    for index, scale in [(0, 2), (1, 4)]:  # validation alternates the scales
        image, mask, canvas = dataset.sample(index, 0)
        assert image.shape == canvas.shape == (3, 64, 64) and mask.shape == (1, 64, 64)
        np.testing.assert_array_equal(mask[0].numpy() == 1, known_grid(64, 64, scale))
        crop = Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        expected, _ = sparse_canvas(np.asarray(downscale(crop, scale)), scale)
        np.testing.assert_allclose(canvas.permute(1, 2, 0).numpy(), expected / 255, atol=1e-6)
    training = SuperResolutionDataset(photos, crop_size=64)
    drawn = {round((1 / training.sample(i, epoch=3)[1].mean().item()) ** 0.5) for i in range(8)}
    assert drawn == {2, 4}  # the known fraction is 1/scale²
    with pytest.raises(ValueError, match="multiple of every scale"):
        SuperResolutionDataset(photos, crop_size=66)


def test_config_checks_task_and_scales():
    config = TrainConfig.from_dict({"data": "d", "out": "o", "task": "superres", "scales": [4]})
    assert config.scales == (4,)
    assert config.resumed_with({"scales": [4], "steps": 5}).steps == 5  # lists from the CLI compare equal
    with pytest.raises(ConfigError, match="cannot change these settings when resuming: scales"):
        config.resumed_with({"scales": [2, 4]})
    with pytest.raises(ConfigError, match="task must be inpaint or superres"):
        TrainConfig(data="d", out="o", task="deblur")
    assert set(TASKS_BY_NAME) == set(TASKS)  # every task a config may name has its Task
    with pytest.raises(ConfigError, match="scales must be some of"):
        TrainConfig(data="d", out="o", task="superres", scales=(3,))
    with pytest.raises(ConfigError, match="crop and val_crop multiples of each"):
        TrainConfig(data="d", out="o", task="superres", crop=250)
    with pytest.raises(ConfigError, match="val_crop multiples of each"):
        TrainConfig(data="d", out="o", task="superres", crop=64, val_crop=250)
    inpainting = TrainConfig(data="d", out="o", crop=250, val_crop=250)  # any size
    assert inpainting.validation_crop == 250
    assert TrainConfig(data="d", out="o", crop=64).validation_crop == 64  # the training crop by default
    with pytest.raises(ConfigError, match=r"^val_crop must be positive$"):
        TrainConfig(data="d", out="o", crop=64, val_crop=0)
    with pytest.raises(ConfigError, match="cannot change these settings when resuming: val_crop"):
        config.resumed_with({"val_crop": 128})  # a run's validation scores must compare


@pytest.mark.parametrize("preset", ["tiny", "superres"])
def test_training_a_superres_model_validates_per_scale_and_upscales(photos, tmp_path, preset):
    out = tmp_path / "run"
    config = TrainConfig.from_dict({
        "data": str(photos), "val": str(photos), "out": str(out), "task": "superres", "preset": preset,
        "crop": 64, "batch_size": 2, "steps": 2, "val_every": 2, "val_limit": 4, "workers": 0,
        "loss": {"perceptual": 0, "style": 0},
    })  # fmt: skip
    model_path = train(config)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    validation = next(row for row in metrics if row["kind"] == "val")
    assert {"psnr", "psnr/x2", "psnr/x4", "ssim/x2"} <= set(validation)
    assert not any("bucket" in key for key in validation)
    metadata = read_metadata(model_path)
    assert metadata["task"] == "superres" and json.loads(metadata["scales"]) == [2, 4]
    upscaled = Upscaler(model_path, "cpu").upscale(Image.open(photos / "p0.png"), 2)
    assert upscaled.size == (192, 160)


def test_superres_validation_results_are_the_raw_output(photos, superres_weights):
    validation = SuperResolutionValidationSet.build(photos, crop=64, limit=4, scales=(2, 4))
    assert validation.groups.tolist() == [2, 4, 2, 4] and validation.group == "x"
    upscaler = Upscaler(superres_weights, "cpu")
    results = validation.results(upscaler.network.model, torch.device("cpu"), slice(0, 2))
    with torch.no_grad():
        output, _ = upscaler.network.model(validation.inputs[:2], validation.masks[:2])
    np.testing.assert_allclose(results, (output.clamp(0, 1) * 255).round() / 255, atol=1e-6)
    assert set(validation.evaluate(upscaler.network.model, torch.device("cpu"))) >= {"psnr/x2", "ssim/x4"}


def test_upscaler_keeps_the_kind_mode_depth_and_alpha(superres_weights):
    upscaler = Upscaler(superres_weights, "cpu")
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    rgba[..., 3] = np.linspace(0, 255, 30, dtype=np.uint8)[None]
    result = upscaler.upscale(rgba, 4)
    assert result.shape == (80, 120, 4) and result.dtype == np.uint8
    expected_alpha = Image.fromarray(rgba[..., 3].astype(np.float32)).resize(
        (120, 80), Image.Resampling.BICUBIC
    )
    np.testing.assert_array_equal(result[..., 3], np.rint(np.clip(np.asarray(expected_alpha), 0, 255)))
    grey16 = rng.integers(0, 65536, (10, 14), dtype=np.uint16)
    assert upscaler.upscale(grey16, 2).shape == (20, 28) and upscaler.upscale(grey16, 2).dtype == np.uint16
    pil = upscaler.upscale(Image.fromarray(rgba[..., :3]).convert("P"), 2)
    assert pil.size == (60, 40) and pil.mode == "RGB"
    tensor = upscaler.upscale(torch.rand(3, 16, 16), 2)
    assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.float32


def test_the_network_output_replaces_every_pixel(superres_weights):
    upscaler = Upscaler(superres_weights, "cpu")
    low = np.asarray(Image.open(EXAMPLE).convert("RGB").crop((200, 100, 264, 148)))
    result = upscaler.upscale(low, 2)
    canvas, hole = sparse_canvas(low.astype(np.float32) / 255, 2)
    image = torch.from_numpy(canvas).permute(2, 0, 1)[None]
    mask = torch.from_numpy(~hole).float()[None, None]
    expected = upscaler.network.predict(image, mask)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(result, np.rint(expected * 255).astype(np.uint8))


def test_large_results_are_computed_in_windows_that_write_every_pixel(superres_weights):
    low = np.asarray(Image.open(EXAMPLE).convert("RGB").crop((100, 100, 180, 160)))
    windowed = Upscaler(superres_weights, "cpu", max_pixels=96 * 96, context=16)  # 160×120 needs windows
    windows = []

    def grey_network(image, mask):  # stands in for the network: 0.5 everywhere
        windows.append(tuple(image.shape[-2:]))
        return torch.full_like(image, 0.5)

    windowed.network.predict = grey_network
    assert (windowed.upscale(low, 2) == 128).all()  # known pixels were replaced too
    assert len(windows) > 1 and max(h * w for h, w in windows) <= 96 * 96
    real = Upscaler(superres_weights, "cpu", max_pixels=96 * 96, context=16).upscale(low, 2)
    whole = Upscaler(superres_weights, "cpu").upscale(low, 2)
    assert np.abs(real.astype(int) - whole).mean() < 8  # windows see less context, little else changes


def test_upscaler_refuses_inpainting_models_and_untrained_scales(tiny_weights, tmp_path):
    with pytest.raises(WeightsError, match="is an inpainting model"):
        Upscaler(tiny_weights, "cpu")
    from pconv import PConvUNet

    only_two = save_weights(
        PConvUNet("tiny"), tmp_path / "x2.safetensors", metadata={"task": "superres", "scales": [2]}
    )
    with pytest.raises(ValueError, match="trained for ×2, not ×4"):
        Upscaler(only_two, "cpu").upscale(np.zeros((8, 8, 3), np.uint8), 4)
    with pytest.raises(ValueError, match="scale must be one of 2, 4, got 3"):
        Upscaler(only_two, "cpu").upscale(np.zeros((8, 8, 3), np.uint8), 3)


def test_trained_scales_come_from_the_header_or_the_training_config(tmp_path):
    from pconv import PConvUNet

    config = json.dumps({"task": "superres", "scales": [4]})
    path = save_weights(
        PConvUNet("tiny"),
        tmp_path / "m.safetensors",
        metadata={"task": "superres", "training_config": config},
    )
    assert Upscaler(path, "cpu").scales == (4,)


def test_upscale_command_single_and_folder(superres_weights, photos, tmp_path, capsys):
    def upscale(*arguments: str) -> int:
        return main(["upscale", *arguments, "--weights", str(superres_weights)])

    output = tmp_path / "big.png"
    assert upscale(str(photos / "p1.png"), "--scale", "4", "-o", str(output)) == 0
    assert Image.open(output).size == (384, 320)
    assert upscale(str(photos / "p1.png"), "--scale", "4", "-o", str(output)) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    (photos / "broken.png").write_bytes(b"junk")
    try:
        status = upscale("--input-dir", str(photos), "--output-dir", str(tmp_path / "out"), "--scale", "2")
    finally:
        (photos / "broken.png").unlink()
    assert status == 1
    captured = capsys.readouterr()
    assert "upscaled ×2 8 of 9 images" in captured.out and "broken.png: not an image format" in captured.err
    assert Image.open(tmp_path / "out" / "p3.png").size == (192, 160)
    assert upscale("--scale", "2", "-o", str(output)) == 2
    assert "give IMAGE --scale K -o OUT" in capsys.readouterr().err


def test_scores_leave_out_the_border_and_use_bt601_luma():
    truth = np.full((12, 12, 3), 100, np.uint8)
    result = truth.copy()
    result[:2] = 0  # only inside the ×2 border
    scores = score(truth, result, 2)
    assert scores["psnr"] == scores["psnr_y"] == float("inf")
    result[5, 5] = (110, 100, 100)  # one pixel, red +10: luma +10·65.481/255
    scores = score(truth, result, 2)
    assert scores["psnr"] == pytest.approx(10 * np.log10(255**2 / (100 / (8 * 8 * 3))))
    assert scores["psnr_y"] == pytest.approx(10 * np.log10(255**2 / ((10 * 65.481 / 255) ** 2 / 64)))


def test_evaluate_upscaling_command(superres_weights, photos, tmp_path, capsys):
    report, data, grid = tmp_path / "sr.md", tmp_path / "sr.json", tmp_path / "grid.png"
    status = main([
        "evaluate-upscaling", "--images", str(photos), "--limit", "3",
        "--methods", f"bicubic,lanczos,pconv:{superres_weights}",
        "--report", str(report), "--json", str(data), "--grid", str(grid),
    ])  # fmt: skip
    assert status == 0
    table = report.read_text()
    assert "| ×2 | bicubic |" in table and "| ×4 | lanczos |" in table and "pconv:" in table
    means = json.loads(data.read_text())["means"]
    bicubic = means["2"]["bicubic"]["psnr"]
    low = downscale(Image.open(photos / "p0.png"), 2)
    first = score(np.asarray(modcrop(Image.open(photos / "p0.png"), 2)), get_upscaler("bicubic")(low, 2), 2)
    records = json.loads(data.read_text())["records"]
    assert records[0]["psnr"] == pytest.approx(first["psnr"]) and 20 < bicubic < 45
    assert Image.open(grid).size == (4 * (96 + 4), 6 * (80 + 4))  # whole 96×80 photos, 2 px frames
