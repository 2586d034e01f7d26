"""``pconv inpaint`` end to end: files, folders, image kinds, large images and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from pconv.cli import main


def noise(height, width, channels=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8).squeeze()


def hole_of(height, width):
    hole = np.zeros((height, width), bool)
    hole[height // 3 : height // 2, width // 4 : width // 2] = True
    return hole


def save_mask(path, hole):
    Image.fromarray(hole.astype(np.uint8) * 255).save(path)
    return path


@pytest.fixture
def case(tmp_path):
    """An odd-sized RGB photo and its mask on disk."""
    image, hole = noise(45, 67), hole_of(45, 67)
    Image.fromarray(image).save(tmp_path / "photo.png")
    save_mask(tmp_path / "mask.png", hole)
    return tmp_path, image, hole


def inpaint(*arguments, weights):
    return main(["inpaint", *map(str, arguments), "--weights", str(weights), "--device", "cpu"])


def test_inpaints_a_file_keeping_known_pixels(case, tiny_weights, capsys):
    folder, image, hole = case
    assert inpaint(folder / "photo.png", "--mask", folder / "mask.png", "-o", folder / "out.png",
                   weights=tiny_weights) == 0  # fmt: skip
    assert "wrote" in capsys.readouterr().out
    with Image.open(folder / "out.png") as out:
        result = np.asarray(out)
    assert result.shape == image.shape
    np.testing.assert_array_equal(result[~hole], image[~hole])
    assert (result[hole] != image[hole]).any()


def test_refine_and_seed_flags_reach_the_inpainter(case, tiny_weights):
    folder, image, hole = case
    paths = ("--mask", folder / "mask.png", "-o")
    inpaint(folder / "photo.png", *paths, folder / "plain.png", weights=tiny_weights)
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        inpaint(
            folder / "photo.png",
            *paths,
            folder / f"{name}.png",
            "--refine",
            "--seed",
            seed,
            weights=tiny_weights,
        )
    plain, a, b, c = (np.asarray(Image.open(folder / f"{name}.png")) for name in ("plain", "a", "b", "c"))
    np.testing.assert_array_equal(a[~hole], image[~hole])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, plain) and not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("mode", "pixels"),
    [
        ("RGBA", noise(45, 67, 4)),
        ("L", noise(45, 67, 1)),
        ("I;16", np.random.default_rng(1).integers(0, 65536, (45, 67), dtype=np.uint16)),
    ],
)
def test_keeps_mode_alpha_and_bit_depth(case, tiny_weights, mode, pixels):
    folder, _, hole = case
    Image.fromarray(pixels).save(folder / "in.png")
    assert inpaint(folder / "in.png", "--mask", folder / "mask.png", "-o", folder / "out.png",
                   weights=tiny_weights) == 0  # fmt: skip
    with Image.open(folder / "out.png") as out:
        assert out.mode == mode
        result = np.asarray(out)
    np.testing.assert_array_equal(result[~hole], pixels[~hole])
    if mode == "RGBA":
        np.testing.assert_array_equal(result[:, :, 3], pixels[:, :, 3])


def test_exif_rotated_jpeg_is_inpainted_upright(tmp_path, tiny_weights):
    exif = Image.Exif()
    exif[0x0112] = 8  # viewers rotate it 90° counter-clockwise
    Image.fromarray(noise(30, 50)).save(tmp_path / "in.jpg", exif=exif)
    hole = hole_of(50, 30)  # drawn on the upright image, 30 wide and 50 tall
    save_mask(tmp_path / "mask.png", hole)
    assert inpaint(tmp_path / "in.jpg", "--mask", tmp_path / "mask.png", "-o", tmp_path / "out.png",
                   weights=tiny_weights) == 0  # fmt: skip
    with Image.open(tmp_path / "in.jpg") as original, Image.open(tmp_path / "out.png") as out:
        upright = np.asarray(original.transpose(Image.Transpose.ROTATE_90))
        assert out.size == (30, 50) and 0x0112 not in out.getexif()
        np.testing.assert_array_equal(np.asarray(out)[~hole], upright[~hole])


def test_large_images_take_the_window_path(tmp_path, tiny_weights):
    image = noise(400, 600)
    hole = np.zeros((400, 600), bool)
    hole[30:50, 20:580] = True
    hole[300:330, 400:430] = True
    image[hole] = 0
    Image.fromarray(image).save(tmp_path / "big.png")
    save_mask(tmp_path / "mask.png", hole)
    assert inpaint(tmp_path / "big.png", "--mask", tmp_path / "mask.png", "-o", tmp_path / "out.png",
                   "--max-pixels", 160**2, "--context", 32, weights=tiny_weights) == 0  # fmt: skip
    with Image.open(tmp_path / "out.png") as out:
        result = np.asarray(out)
    np.testing.assert_array_equal(result[~hole], image[~hole])
    assert (result[hole].sum(axis=1) > 0).mean() > 0.5  # filled, not left black


def test_folder_mode_matches_by_name_and_reports_the_rest(tmp_path, tiny_weights, capsys):
    images, masks = tmp_path / "images", tmp_path / "masks"
    (images / "trip").mkdir(parents=True)
    (masks / "trip").mkdir(parents=True)
    for name in ("a.png", "trip/b.jpg", "lonely.png"):
        Image.fromarray(noise(33, 41)).save(images / name)
    for name in ("a.png", "trip/b.png", "orphan.png"):
        save_mask(masks / name, hole_of(33, 41))
    assert inpaint("--input-dir", images, "--mask-dir", masks, "--output-dir", tmp_path / "out",
                   weights=tiny_weights) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*")) == [
        "a.png",
        "trip/b.jpg",
    ]
    assert f"1 image without a mask in {masks} (skipped): {images / 'lonely.png'}" in captured.err
    assert f"1 mask without an image in {images} (ignored): {masks / 'orphan.png'}" in captured.err
    assert "inpainted 2 of 2 images" in captured.out

    # A second run refuses to overwrite, unless asked.
    assert inpaint("--input-dir", images, "--mask-dir", masks, "--output-dir", tmp_path / "out",
                   weights=tiny_weights) == 2  # fmt: skip
    assert "2 outputs already exist" in capsys.readouterr().err
    assert inpaint("--input-dir", images, "--mask-dir", masks, "--output-dir", tmp_path / "out",
                   "--overwrite", weights=tiny_weights) == 0  # fmt: skip


def test_folder_mode_goes_on_past_a_bad_file(tmp_path, tiny_weights, capsys):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    Image.fromarray(noise(20, 20)).save(images / "good.png")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    for name in ("good.png", "broken.png"):
        save_mask(masks / name, hole_of(20, 20))
    assert inpaint("--input-dir", images, "--mask-dir", masks, "--output-dir", tmp_path / "out",
                   weights=tiny_weights) == 1  # fmt: skip
    captured = capsys.readouterr()
    assert "cannot read image" in captured.err and "broken.png" in captured.err
    assert "inpainted 1 of 2 images" in captured.out and (tmp_path / "out" / "good.png").exists()


def test_folder_mode_checks_the_output_folder_first(tmp_path, tiny_weights, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(noise(20, 20)).save(tmp_path / "images" / "a.png")
    save_mask(tmp_path / "masks" / "a.png", hole_of(20, 20))
    (tmp_path / "taken").write_text("a file, not a folder")
    assert inpaint("--input-dir", tmp_path / "images", "--mask-dir", tmp_path / "masks",
                   "--output-dir", tmp_path / "taken" / "out", weights=tiny_weights) == 2  # fmt: skip
    assert "cannot create output folder" in capsys.readouterr().err


def test_empty_mask_copies_the_image_with_a_notice(case, tiny_weights, capsys):
    folder, image, _ = case
    save_mask(folder / "empty.png", np.zeros((45, 67), bool))
    assert inpaint(folder / "photo.png", "--mask", folder / "empty.png", "-o", folder / "out.png",
                   weights=tiny_weights) == 0  # fmt: skip
    assert "has no hole" in capsys.readouterr().err
    with Image.open(folder / "out.png") as out:
        np.testing.assert_array_equal(np.asarray(out), image)


def _bad_weights(folder):
    path = folder / "foreign.safetensors"
    save_file({"x": torch.zeros(1)}, path)
    return path


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda f: (f / "photo.png").write_bytes((f / "photo.png").read_bytes()[:120]), "file is truncated"),
        (lambda f: (f / "photo.png").write_text("not an image"), "not an image format pconv reads"),
        (lambda f: save_mask(f / "mask.png", np.zeros((44, 67), bool)), "is 67×44 but image"),
        (lambda f: save_mask(f / "mask.png", np.ones((45, 67), bool)), "covers the whole image"),
        (lambda f: (f / "mask.png").unlink(), "cannot read mask"),
        (lambda f: (f / "out.png").write_bytes(b"precious"), "out.png already exists"),
    ],
)
def test_bad_inputs_are_one_line_errors(case, tiny_weights, capsys, setup, message):
    folder = case[0]
    setup(folder)
    assert inpaint(folder / "photo.png", "--mask", folder / "mask.png", "-o", folder / "out.png",
                   weights=tiny_weights) == 2  # fmt: skip
    error = capsys.readouterr().err
    assert error.startswith("pconv: error: ") and message in error and "Traceback" not in error
    assert error.count("\n") == 1


def test_bad_weights_and_outputs_are_one_line_errors(case, tiny_weights, capsys, monkeypatch):
    folder = case[0]
    arguments = ["inpaint", str(folder / "photo.png"), "--mask", str(folder / "mask.png")]
    monkeypatch.setattr("pconv.weights.DEFAULT_WEIGHTS", folder / "absent.safetensors")
    for extra, message in [
        (["-o", str(folder / "o.png")], "no default model is installed"),
        (["-o", str(folder / "o.png"), "--weights", str(_bad_weights(folder))], "not a pconv weights file"),
        (["-o", str(folder / "o.png"), "--weights", str(folder / "photo.png")], "neither a .safetensors"),
        (["-o", str(folder / "photo.png" / "o.png"), "--weights", str(tiny_weights)], "cannot create folder"),
        (["-o", str(folder / "o.xyz"), "--weights", str(tiny_weights)], "cannot tell an image format"),
    ]:
        assert main(arguments + extra) == 2
        assert message in capsys.readouterr().err, extra


def test_rgba_to_jpeg_is_refused_before_losing_alpha(case, tiny_weights, capsys):
    folder, _, _ = case
    Image.fromarray(noise(45, 67, 4)).save(folder / "photo.png")
    assert inpaint(folder / "photo.png", "--mask", folder / "mask.png", "-o", folder / "out.jpg",
                   weights=tiny_weights) == 2  # fmt: skip
    assert "JPEG cannot store this 8-bit RGBA image" in capsys.readouterr().err
    assert not (folder / "out.jpg").exists()


@pytest.mark.parametrize(
    "arguments",
    [
        ["x.png"],
        ["x.png", "--mask", "m.png"],
        ["--input-dir", "d"],
        ["x.png", "--mask", "m", "-o", "o", "--mask-dir", "d"],
    ],
)
def test_modes_are_mutually_exclusive(arguments, capsys):
    assert main(["inpaint", *arguments]) == 2
    assert "IMAGE --mask MASK -o OUT" in capsys.readouterr().err


def test_folder_inpainting_is_a_library_function_returning_a_report(tmp_path, tiny_weights):
    from pconv import Inpainter
    from pconv.inference.folders import FolderError, inpaint_folder

    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    images.mkdir()
    masks.mkdir()
    for name in ("a", "b", "c", "lonely"):
        Image.fromarray(noise(24, 30, seed=len(name))).save(images / f"{name}.png")
    save_mask(masks / "a.png", hole_of(24, 30))
    save_mask(masks / "b.png", np.zeros((24, 30), bool))  # no hole: copied unchanged
    save_mask(masks / "c.png", hole_of(12, 30))  # wrong size: fails, the others go on
    save_mask(masks / "orphan.png", hole_of(24, 30))
    inpainter = Inpainter(tiny_weights, device="cpu")
    seen = []
    report = inpaint_folder(inpainter, images, masks, out, progress=lambda jobs: seen.extend(jobs) or jobs)
    assert report.written == [images / "a.png", images / "b.png"] and report.unchanged == [images / "b.png"]
    assert [path for path, _ in report.failed] == [images / "c.png"] and report.total == 3
    assert "size" in str(report.failed[0][1]) and len(seen) == 3
    assert report.images_without_mask == [images / "lonely.png"]
    assert report.masks_without_image == [masks / "orphan.png"]
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / "b.png")), np.asarray(Image.open(images / "b.png"))
    )
    before = (out / "a.png").read_bytes()
    with pytest.raises(FolderError, match="2 outputs already exist"):
        inpaint_folder(inpainter, images, masks, out)
    assert (out / "a.png").read_bytes() == before
