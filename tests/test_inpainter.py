"""The Inpainter API: exact composites, every image kind, batches, large images, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import pconv
import pconv.inference.inpainter as inpainter_module
from pconv import Inpainter
from pconv.devices import cpu_unet_memory_format
from pconv.inference import EmptyMaskWarning
from pconv.inference.blending import blend_into_border
from pconv.masks import MaskError, MaskSizeError
from pconv.weights import WeightsError


@pytest.fixture
def inpainter(tiny_weights):
    return Inpainter(tiny_weights, device="cpu")


def photo(height=37, width=53, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def blob(height=37, width=53):
    hole = np.zeros((height, width), bool)
    hole[height // 4 : height // 2, width // 5 : width // 2] = True
    return hole


def expected(model, image, hole, blend=True):
    """The composite computed by hand from the model (its fill blended into the hole's
    border unless ``blend`` is False): uint8 ``(H, W, 3)``."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    mask = torch.from_numpy(~hole).float()[None, None]
    with torch.no_grad():
        output, _ = model(x, mask)
    output = output.clamp(0, 1)
    if blend:
        output = blend_into_border(x, output, mask)
    output = np.rint(output[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    return np.where(hole[:, :, None], output, image)


def test_result_is_the_models_composite_with_known_pixels_untouched(inpainter, tiny_model):
    image, hole = photo(), blob()
    result = inpainter.inpaint(image, hole)
    assert result.dtype == np.uint8 and result.shape == image.shape
    np.testing.assert_array_equal(result, expected(tiny_model, image, hole))
    assert (result[hole] != image[hole]).any()


def test_without_blending_the_result_is_the_networks_own_composite(tiny_weights, tiny_model):
    image, hole = photo(), blob()
    result = Inpainter(tiny_weights, device="cpu", blend=False).inpaint(image, hole)
    np.testing.assert_array_equal(result, expected(tiny_model, image, hole, blend=False))
    assert (result != Inpainter(tiny_weights, device="cpu").inpaint(image, hole)).any()


def test_values_in_holes_do_not_matter(inpainter):
    image, hole = photo(), blob()
    other = image.copy()
    other[hole] = photo(seed=1)[hole]
    np.testing.assert_array_equal(inpainter.inpaint(image, hole), inpainter.inpaint(other, hole))


def test_pil_images_keep_their_mode_alpha_and_depth(inpainter):
    image, hole = photo(), blob()
    mask = Image.fromarray(hole.astype(np.uint8) * 255)
    rgb = inpainter.inpaint(Image.fromarray(image), mask)
    assert isinstance(rgb, Image.Image) and rgb.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(rgb), inpainter.inpaint(image, hole))

    alpha = np.random.default_rng(2).integers(0, 256, hole.shape, dtype=np.uint8)
    rgba = inpainter.inpaint(Image.fromarray(np.dstack([image, alpha])), mask)
    assert rgba.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(rgba)[:, :, 3], alpha)
    np.testing.assert_array_equal(np.asarray(rgba)[:, :, :3], np.asarray(rgb))

    grey = Image.fromarray(image).convert("L")
    filled = inpainter.inpaint(grey, mask)
    assert filled.mode == "L"
    np.testing.assert_array_equal(np.asarray(filled)[~hole], np.asarray(grey)[~hole])

    deep = np.random.default_rng(3).integers(0, 65536, hole.shape, dtype=np.uint16)
    filled = inpainter.inpaint(Image.fromarray(deep), mask)
    assert filled.mode.startswith("I;16")
    np.testing.assert_array_equal(np.asarray(filled)[~hole], deep[~hole])


def test_tensors_and_float_arrays_come_back_as_they_went_in(inpainter):
    image, hole = photo(), blob()
    reference = inpainter.inpaint(image, hole)
    tensor = torch.from_numpy(image).permute(2, 0, 1).double() / 255
    result = inpainter.inpaint(tensor, torch.from_numpy(hole))
    assert result.dtype == torch.float64 and result.shape == tensor.shape
    assert torch.equal(result[:, ~torch.from_numpy(hole)], tensor[:, ~torch.from_numpy(hole)])
    np.testing.assert_allclose(result.permute(1, 2, 0).numpy() * 255, reference, atol=0.5 + 1e-6)
    floats = inpainter.inpaint(image / 255.0, hole.astype(np.uint8) * 255)
    assert floats.dtype == np.float64
    np.testing.assert_array_equal(floats[~hole], image[~hole] / 255.0)


def test_mask_conventions_and_channels(inpainter):
    image, hole = photo(), blob()
    reference = inpainter.inpaint(image, hole)
    np.testing.assert_array_equal(inpainter.inpaint(image, ~hole, mask_convention="black-hole"), reference)
    np.testing.assert_array_equal(inpainter.inpaint(image, hole.astype(np.uint8)), reference)  # 0/1
    painted = np.zeros((*hole.shape, 4), np.uint8)
    painted[hole] = (255, 0, 0, 255)  # a red brush layer on transparency
    np.testing.assert_array_equal(inpainter.inpaint(image, Image.fromarray(painted)), reference)


def test_batches_match_single_calls(inpainter):
    images = [photo(seed=0), photo(seed=1), photo(29, 31, seed=2), photo(seed=3)]
    holes = [blob(), blob()[::-1], blob(29, 31), blob()[:, ::-1]]
    batch = inpainter.inpaint_batch(images, holes, batch_size=2)
    for image, hole, result in zip(images, holes, batch, strict=True):
        np.testing.assert_array_equal(result, inpainter.inpaint(image, hole))


def test_large_images_are_inpainted_in_bounded_windows_at_full_scale(tiny_weights, tiny_model, monkeypatch):
    inpainter = Inpainter(tiny_weights, device="cpu", max_pixels=192**2, context=48)
    image = photo(500, 700, seed=4)
    hole = np.zeros((500, 700), bool)
    hole[40:60, 30:660] = True  # a scratch wider than any window
    hole[300:340, 200:260] = True
    hole[450:, 650:] = True
    image[hole] = (255, 0, 255)  # sentinel colour that must not survive
    seen = []
    predict = inpainter.predict
    monkeypatch.setattr(inpainter, "predict", lambda x, m: seen.append(x.shape) or predict(x, m))

    result = inpainter.inpaint(image, hole)
    assert len(seen) > 3 and all(shape[2] * shape[3] <= 192**2 for shape in seen)
    np.testing.assert_array_equal(result[~hole], image[~hole])
    assert not (result[hole] == (255, 0, 255)).all(axis=1).any()
    # the isolated blob was inpainted at full scale in a window around it
    view = (slice(288 - 48, 352 + 48), slice(192 - 48, 288 + 48))  # its 32 px cells grown by the context
    window = expected(tiny_model, image[view], hole[view])
    np.testing.assert_array_equal(result[view], window)


def test_empty_mask_returns_the_image_with_a_warning(inpainter):
    image = photo()
    with pytest.warns(EmptyMaskWarning, match="no hole"):
        result = inpainter.inpaint(image, np.zeros(image.shape[:2], bool))
    np.testing.assert_array_equal(result, image)


@pytest.mark.parametrize(
    ("mask", "error", "message"),
    [
        (np.ones((37, 53), bool), MaskError, "covers the whole image"),
        (np.full((37, 53), 7, np.uint8), MaskError, "must be binary"),
        (np.linspace(0, 1, 37 * 53).reshape(37, 53), MaskError, "must be binary"),
        (np.zeros((36, 53), bool), MaskSizeError, "53×36 but image is 53×37"),
        (np.zeros((2, 37, 53), bool), MaskError, r"must be \(H, W\)"),
    ],
)
def test_bad_masks_are_specific_errors(inpainter, mask, error, message):
    with pytest.raises(error, match=message):
        inpainter.inpaint(photo(), mask)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((4, 5, 3), np.int64), "uint8, uint16 or floats"),
        (np.full((4, 5, 3), 2.0), r"values in \[0, 1\]"),
        (np.zeros((4, 5, 5), np.uint8), "must be"),
        (torch.zeros(1, 3, 4, 5), r"\(C, H, W\)"),
    ],
)
def test_bad_images_are_specific_errors(inpainter, image, message):
    with pytest.raises(ValueError, match=message):
        inpainter.inpaint(image, np.zeros((4, 5), bool))


def test_without_a_default_model_the_error_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr("pconv.weights.DEFAULT_WEIGHTS", tmp_path / "absent.safetensors")
    with pytest.raises(WeightsError, match=r"no default model is installed.*--weights"):
        Inpainter()


def test_model_device_and_repr(inpainter):
    assert isinstance(inpainter.model, pconv.PConvUNet) and not inpainter.model.training
    assert inpainter.device == torch.device("cpu")
    assert "preset='tiny'" in repr(inpainter)
    with pytest.raises(ValueError, match=r"CUDA is not available|unknown device"):
        Inpainter(inpainter.weights, device="cuda:7" if not torch.cuda.is_available() else "nonsense")


def test_compiled_network_inpaints_like_the_eager_one(tiny_weights, tiny_model):
    """``compile=True`` runs the network through torch.compile (inductor; on a CPU that
    needs a C++ compiler, as on the project machines) and changes nothing but float
    rounding in the fill."""
    compiled = Inpainter(tiny_weights, device="cpu", compile=True)
    image, hole = photo(), blob()
    result = compiled.inpaint(image, hole)
    assert compiled._network is not compiled.model
    np.testing.assert_array_equal(result[~hole], image[~hole])
    difference = np.abs(result.astype(int) - expected(tiny_model, image, hole).astype(int))
    assert difference.max() <= 1


def test_the_network_runs_in_the_cpus_faster_memory_format_with_the_same_fills(tiny_weights, monkeypatch):
    """Channels-last on CPUs with AVX-512 (pconv.devices.cpu_unet_memory_format), which
    changes nothing but float rounding."""
    assert Inpainter(tiny_weights, device="cpu").memory_format == cpu_unet_memory_format()
    image, hole = photo(), blob()
    results = {}
    for memory_format in (torch.contiguous_format, torch.channels_last):
        monkeypatch.setattr(inpainter_module, "cpu_unet_memory_format", lambda f=memory_format: f)
        inpainter = Inpainter(tiny_weights, device="cpu")
        assert inpainter.memory_format == memory_format
        assert inpainter.model.encoder[0].conv.weight.is_contiguous(memory_format=memory_format)
        inputs = []

        def recording(x, m, network=inpainter._network, inputs=inputs):
            inputs.append((x, m))
            return network(x, m)

        inpainter._network = recording
        results[memory_format] = inpainter.inpaint(image, hole).astype(int)
        assert inputs and all(t.is_contiguous(memory_format=memory_format) for pair in inputs for t in pair)
    assert np.abs(results[torch.contiguous_format] - results[torch.channels_last]).max() <= 1
