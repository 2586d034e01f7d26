"""The default model shipped in the package, and the example the README's first command inpaints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

from pconv import Inpainter, Upscaler
from pconv.cli import main
from pconv.eval.upscaling import get_upscaler, score
from pconv.masks import generate_mask
from pconv.superres import downscale, modcrop
from pconv.weights import DEFAULT_SUPERRES_WEIGHTS, DEFAULT_WEIGHTS, read_metadata, task_of

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_shipped_weights_are_a_small_half_precision_trained_model():
    assert DEFAULT_WEIGHTS.stat().st_size <= 25 * 2**20
    with safe_open(str(DEFAULT_WEIGHTS), framework="pt") as file:
        dtypes = {str(file.get_slice(key).get_dtype()) for key in file.keys()}  # noqa: SIM118 (safe_open is not a dict)
    assert "F16" in dtypes and "F32" not in dtypes
    metadata = read_metadata(DEFAULT_WEIGHTS)
    assert metadata["preset"] == "mini" and int(metadata["images_seen"]) > 10_000


def test_model_card_describes_the_shipped_weights():
    """The card's summary states the images seen that the shipped file records."""
    metadata = read_metadata(DEFAULT_WEIGHTS)
    card = (Path(__file__).parent.parent / "MODEL_CARD.md").read_text()
    summary = next(line for line in card.splitlines() if line.startswith("| Trained |"))
    assert f"{int(metadata['images_seen']):,} training images seen" in summary
    assert f"preset `{metadata['preset']}`, depth {metadata['depth']}" in card


@pytest.fixture(scope="module")
def default_inpainter():
    return Inpainter(device="cpu")


@pytest.fixture(scope="module")
def coffee():
    with Image.open(EXAMPLES / "coffee.png") as image:
        return np.asarray(image.convert("RGB"))


def test_example_mask_fits_the_example_photo(coffee):
    with Image.open(EXAMPLES / "coffee_mask.png") as mask:
        assert mask.mode == "L" and mask.size == (coffee.shape[1], coffee.shape[0])
        values = np.unique(np.asarray(mask))
    np.testing.assert_array_equal(values, [0, 255])


def test_default_model_fills_holes_far_better_than_a_flat_colour(default_inpainter, coffee):
    """On a photo it was not trained on, with holes whose truth is known (the photo's
    own pixels), the model's fill must be much closer to the truth than the mean
    colour of the known pixels: an untrained, mis-scaled or mis-loaded model is not."""
    hole = generate_mask(*coffee.shape[:2], bucket=3, seed=0)  # True = hole
    result = default_inpainter.inpaint(coffee, hole).astype(float)
    truth = coffee.astype(float)
    flat = truth[~hole].mean(axis=0)
    model_error = np.abs(result[hole] - truth[hole]).mean()
    flat_error = np.abs(flat - truth[hole]).mean()
    assert model_error < 0.6 * flat_error
    np.testing.assert_array_equal(result[~hole], truth[~hole])


def test_inpaint_command_uses_the_default_model_on_the_example(tmp_path, coffee):
    output = tmp_path / "coffee_filled.png"
    mask = EXAMPLES / "coffee_mask.png"
    assert main(["inpaint", str(EXAMPLES / "coffee.png"), "--mask", str(mask), "-o", str(output)]) == 0
    with Image.open(output) as filled, Image.open(mask) as hole_image:
        result, hole = np.asarray(filled), np.asarray(hole_image) == 255
    np.testing.assert_array_equal(result[~hole], coffee[~hole])
    assert np.abs(result[hole].astype(int) - coffee[hole]).mean() > 5  # the spoon is gone


def test_shipped_superres_weights_are_small_and_name_their_task_and_scales():
    assert DEFAULT_SUPERRES_WEIGHTS.stat().st_size <= 25 * 2**20
    metadata = read_metadata(DEFAULT_SUPERRES_WEIGHTS)
    assert task_of(metadata) == "superres" and metadata["preset"] == "superres"
    assert Upscaler(device="cpu").scales == (2, 4)
    card = (Path(__file__).parent.parent / "MODEL_CARD.md").read_text()
    assert f"{int(metadata['images_seen']):,} super-resolution training images" in card


@pytest.mark.parametrize("scale", [2, 4])
def test_shipped_superres_model_beats_lanczos_on_the_example(coffee, scale):
    """The example photo was never trained on: downscaled and upscaled back, the shipped
    model must come closer to it than Lanczos does, by a margin (MODEL_CARD.md,
    Super-resolution, gives the measured one). An untrained model is bicubic, which
    Lanczos beats; a mis-scaled or misaligned one is worse than both."""
    photo = Image.fromarray(coffee)
    truth, low = np.asarray(modcrop(photo, scale)), downscale(photo, scale)
    ours = score(truth, np.asarray(Upscaler(device="cpu").upscale(low, scale)), scale)["psnr"]
    lanczos = score(truth, get_upscaler("lanczos")(low, scale), scale)["psnr"]
    assert ours > lanczos + 0.5, f"pconv {ours:.2f} dB, Lanczos {lanczos:.2f} dB"
