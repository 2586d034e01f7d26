"""Image files read and written for inpainting: modes, depths, orientation, metadata, errors."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from pconv.images import (
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    Picture,
    UnsupportedImageError,
    output_format,
    picture_from_pil,
    read_picture,
    write_picture,
)


@pytest.fixture
def cv2():
    return pytest.importorskip("cv2", reason="OpenCV (the opencv extra) reads 16-bit colour PNGs")


def noise(shape, dtype=np.uint8, seed=0):
    top = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, top, shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize(
    ("mode", "shape"),
    [("L", (13, 17)), ("LA", (13, 17, 2)), ("RGB", (13, 17, 3)), ("RGBA", (13, 17, 4))],
)
def test_eight_bit_modes_round_trip_bit_exactly(tmp_path, mode, shape):
    pixels = noise(shape)
    Image.fromarray(pixels, mode).save(tmp_path / "in.png")
    picture = read_picture(tmp_path / "in.png")
    assert picture.pixels.dtype == np.uint8 and picture.pixels.shape == (13, 17, len(mode))
    write_picture(picture, tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == mode
        np.testing.assert_array_equal(np.asarray(out), pixels)


def test_sixteen_bit_grey_png_keeps_all_sixteen_bits(tmp_path):
    pixels = noise((9, 11), np.uint16)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    picture = read_picture(tmp_path / "in.png")
    assert picture.pixels.dtype == np.uint16
    np.testing.assert_array_equal(picture.pixels[:, :, 0], pixels)
    write_picture(picture, tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode.startswith("I;16")
        np.testing.assert_array_equal(np.asarray(out), pixels)


@pytest.mark.parametrize("channels", [3, 4])
def test_sixteen_bit_colour_png_keeps_all_sixteen_bits(tmp_path, channels, cv2):
    pixels = noise((9, 11, channels), np.uint16)
    cv2.imwrite(str(tmp_path / "in.png"), pixels[:, :, [2, 1, 0, 3][:channels]])  # OpenCV writes BGR(A)
    picture = read_picture(tmp_path / "in.png")
    assert picture.deep_colour
    np.testing.assert_array_equal(picture.pixels, pixels)
    write_picture(picture, tmp_path / "out.png")
    np.testing.assert_array_equal(read_picture(tmp_path / "out.png").pixels, pixels)
    with pytest.raises(ImageWriteError, match="only be written as PNG"):
        write_picture(picture, tmp_path / "out.tif")


def test_sixteen_bit_colour_without_opencv_is_a_clear_error(tmp_path, monkeypatch, cv2):
    cv2.imwrite(str(tmp_path / "in.png"), noise((5, 6, 3), np.uint16))
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(ImageReadError, match=r"in\.png.*16 bits.*pip install opencv-python-headless"):
        read_picture(tmp_path / "in.png")


def test_exif_orientation_is_applied_and_dropped(tmp_path):
    pixels = noise((20, 40, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90° clockwise
    exif[0x010F] = "pconv-test-camera"
    Image.fromarray(pixels).save(tmp_path / "in.jpg", exif=exif, quality=100)
    picture = read_picture(tmp_path / "in.jpg")
    assert picture.size == (20, 40)  # upright: width and height swapped
    write_picture(picture, tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.size == (20, 40)
        assert 0x0112 not in out.getexif() and out.getexif()[0x010F] == "pconv-test-camera"


def test_png_metadata_is_carried_over(tmp_path):
    text = PngImagePlugin.PngInfo()
    text.add_text("Description", "a test photo")
    icc = b"not a real profile but carried byte for byte"
    Image.fromarray(noise((8, 8, 3))).save(tmp_path / "in.png", pnginfo=text, dpi=(300, 300), icc_profile=icc)
    write_picture(read_picture(tmp_path / "in.png"), tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as out:
        assert out.text["Description"] == "a test photo"
        assert out.info["icc_profile"] == icc
        assert tuple(round(v) for v in out.info["dpi"]) == (300, 300)


def test_palette_and_bilevel_images_are_converted_on_reading():
    palette = Image.fromarray(noise((6, 7, 3))).convert("P")
    assert picture_from_pil(palette).pixels.shape == (6, 7, 3)
    np.testing.assert_array_equal(picture_from_pil(palette).pixels, np.asarray(palette.convert("RGB")))
    assert picture_from_pil(Image.new("1", (4, 3), 1)).pixels.tolist() == [[[255]] * 4] * 3


def test_grey_pictures_take_the_luma_of_rgb():
    picture = Picture(np.zeros((1, 2, 1), np.uint8))
    picture.set_rgb(slice(None), slice(None), np.array([[True, False]]), np.array([[[1.0, 0.5, 0.0]] * 2]))
    assert picture.pixels[0, :, 0].tolist() == [round(255 * (0.299 + 0.587 * 0.5)), 0]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "No such file"), (b"this is not an image", "not an image format"), ("truncated", "truncated")],
)
def test_unreadable_images_are_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "photo.png"
    if content == "truncated":
        Image.fromarray(noise((64, 64, 3))).save(path)
        path.write_bytes(path.read_bytes()[:300])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=rf"photo\.png.*{message}"):
        read_picture(path)


def test_file_objects_read_like_paths(tmp_path):
    Image.fromarray(noise((9, 11, 4)), "RGBA").save(tmp_path / "in.png")
    from_path = read_picture(tmp_path / "in.png")
    from_file = read_picture(io.BytesIO((tmp_path / "in.png").read_bytes()))
    np.testing.assert_array_equal(from_file.pixels, from_path.pixels)
    with pytest.raises(UnsupportedImageError, match=r"cannot read image upload\.png: not an image format"):
        read_picture(io.BytesIO(b"junk"), name="upload.png")


def test_deep_colour_png_reads_from_a_file_object(tmp_path, cv2):
    pixels = noise((6, 5, 3), np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), pixels[:, :, ::-1])
    picture = read_picture(io.BytesIO((tmp_path / "deep.png").read_bytes()))
    np.testing.assert_array_equal(picture.pixels, pixels)


def test_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(noise((64, 50, 3))).save(path)
    path.write_bytes(path.read_bytes()[:300])  # truncated: decoding it would fail
    with pytest.raises(
        ImageTooLargeError, match=r"big\.png is 50×64 = 3,200 pixels, more than the limit of 3,199"
    ):
        read_picture(path, max_pixels=3199)
    with pytest.raises(ImageReadError, match="truncated"):
        read_picture(path, max_pixels=3200)


def test_writing_checks_format_mode_and_existing_files(tmp_path):
    rgba = Picture(noise((4, 4, 4)))
    with pytest.raises(ImageWriteError, match="cannot tell an image format"):
        output_format(tmp_path / "out.xyz")
    with pytest.raises(ImageWriteError, match="JPEG cannot store this 8-bit RGBA image"):
        write_picture(rgba, tmp_path / "out.jpg")
    assert not (tmp_path / "out.jpg").exists()
    write_picture(rgba, tmp_path / "nested" / "out.webp")  # folders are created; WebP is lossless
    with Image.open(tmp_path / "nested" / "out.webp") as out:
        np.testing.assert_array_equal(np.asarray(out), rgba.pixels)
    with pytest.raises(FileExistsError, match="already exists"):
        write_picture(rgba, tmp_path / "nested" / "out.webp")
    write_picture(rgba, tmp_path / "nested" / "out.webp", overwrite=True)
    assert sorted(path.name for path in (tmp_path / "nested").iterdir()) == ["out.webp"]  # no temp files
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match="cannot create folder"):
        write_picture(rgba, tmp_path / "file" / "out.png")
