"""Mask generation, buckets, conventions and folders (SPEC §5)."""

from __future__ import annotations

import io
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pconv.masks import (
    BUCKETS,
    MaskError,
    MaskGenerator,
    MaskSizeError,
    bucket_of,
    check_mask_size,
    generate_mask,
    hole_from_image,
    hole_ratio,
    hole_to_mask,
    load_nvidia_masks,
    read_mask,
    resize_hole,
    scan_masks,
    touches_border,
    write_mask,
)
from pconv.masks.augment import augment_hole

NVIDIA_MASKS = Path(__file__).resolve().parents[2] / "shared" / "data" / "masks" / "nvidia_test"


# Buckets and border -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "bucket"),
    [(0.0, None), (0.01, None), (0.0101, 1), (0.1, 1), (0.1001, 2), (0.35, 4), (0.6, 6), (0.6001, None)],
)
def test_bucket_intervals_are_open_below_and_closed_above(ratio, bucket):
    assert bucket_of(ratio) == bucket


def test_touches_border_uses_a_16_pixel_band():
    hole = np.zeros((64, 64), bool)
    hole[16, 32] = True  # 16 px from the top edge: outside the band
    assert not touches_border(hole)
    hole[15, 32] = True
    assert touches_border(hole)
    assert touches_border(np.pad(np.ones((1, 1), bool), ((30, 30), (63, 0))))  # right edge


# Generator ----------------------------------------------------------------------------


@pytest.mark.parametrize("bucket", list(BUCKETS))
def test_generated_masks_lie_in_their_bucket_with_the_requested_border(bucket):
    generator, rng = MaskGenerator(), np.random.default_rng(bucket)
    for index in range(200):
        border = index % 2 == 0
        height, width = rng.integers(160, 225, size=2)
        hole = generator(int(height), int(width), rng, bucket=bucket, border=border)
        assert hole.shape == (height, width) and hole.dtype == bool
        low, high = BUCKETS[bucket]
        assert low < hole_ratio(hole) <= high, (index, hole_ratio(hole))
        assert touches_border(hole) == border, index


def test_generation_is_reproducible_from_a_seed():
    first = generate_mask(256, 192, bucket=3, border=False, seed=7)
    assert np.array_equal(first, generate_mask(256, 192, bucket=3, border=False, seed=7))
    assert not np.array_equal(first, generate_mask(256, 192, bucket=3, border=False, seed=8))


def test_training_distribution_covers_every_bucket_and_both_borders():
    generator, rng = MaskGenerator(), np.random.default_rng(0)
    holes = [generator(128, 128, rng) for _ in range(600)]
    buckets = Counter(bucket_of(hole_ratio(hole)) for hole in holes)
    assert set(buckets) == set(BUCKETS)
    assert all(60 <= count <= 140 for count in buckets.values()), buckets  # uniform: 100 each
    # 128² leaves no room for large holes inside the band, so those touch the border.
    border = Counter((bucket_of(hole_ratio(h)) <= 3, touches_border(h)) for h in holes)
    assert border[(True, False)] > 100 and border[(True, True)] > 100


def test_bucket_weights_select_buckets():
    generator = MaskGenerator(bucket_weights=(0, 0, 0, 0, 1, 0))
    rng = np.random.default_rng(1)
    assert {bucket_of(hole_ratio(generator(96, 96, rng))) for _ in range(10)} == {5}


def test_impossible_requests_raise():
    with pytest.raises(ValueError, match="too little room"):
        generate_mask(64, 64, bucket=4, border=False)
    with pytest.raises(ValueError, match="bucket must be one of"):
        generate_mask(64, 64, bucket=7)
    with pytest.raises(ValueError, match="at least 8"):
        generate_mask(4, 64, bucket=1)
    with pytest.raises(ValueError, match="bucket_weights"):
        MaskGenerator(bucket_weights=(1, 1))


def test_augmentation_returns_a_binary_mask_of_the_requested_size():
    hole = generate_mask(200, 300, bucket=4, border=True, seed=0)
    out = augment_hole(hole, 128, np.random.default_rng(0))
    assert out.shape == (128, 128) and out.dtype == bool
    assert 0 < hole_ratio(out) < 1
    assert np.array_equal(out, augment_hole(hole, 128, np.random.default_rng(0)))


# Conventions ------------------------------------------------------------------------


def grey(values) -> Image.Image:
    return Image.fromarray(np.asarray(values, np.uint8), mode="L")


def test_white_is_hole_by_default_and_black_hole_inverts():
    image = grey([[0, 255], [255, 0]])
    assert hole_from_image(image).tolist() == [[False, True], [True, False]]
    assert hole_from_image(image, "black-hole").tolist() == [[True, False], [False, True]]


def test_soft_masks_are_binarised_at_128():
    assert hole_from_image(grey([[0, 127, 128, 255]])).tolist() == [[False, False, True, True]]


def test_jpeg_mask_is_binarised_back_to_its_shape():
    hole = np.zeros((64, 64), bool)
    hole[13:45, 9:39] = True  # not on JPEG's 8×8 blocks, so the edges ring
    buffer = io.BytesIO()
    grey(hole * 255).save(buffer, "JPEG", quality=60)
    decoded = np.asarray(Image.open(buffer))
    assert len(np.unique(decoded)) > 2  # JPEG really did blur the edges
    assert np.array_equal(hole_from_image(Image.open(buffer)), hole)


def test_rgba_masks_use_alpha_when_it_varies_else_luminance():
    painted = np.zeros((2, 2, 4), np.uint8)
    painted[0, 0] = (255, 0, 0, 255)  # a red brush dab on a transparent layer
    assert hole_from_image(Image.fromarray(painted, "RGBA")).tolist() == [[True, False], [False, False]]
    opaque = np.full((2, 2, 4), 255, np.uint8)
    opaque[1, 1, :3] = 0
    assert hole_from_image(Image.fromarray(opaque, "RGBA")).tolist() == [[True, True], [True, False]]
    assert hole_from_image(Image.fromarray(opaque, "RGBA"), channel="alpha").all()  # opaque = painted
    with pytest.raises(MaskError, match="no alpha channel"):
        hole_from_image(grey([[0]]), channel="alpha")


def test_other_modes_are_read():
    assert hole_from_image(grey([[0, 255]]).convert("1")).tolist() == [[False, True]]
    assert hole_from_image(grey([[0, 255]]).convert("P")).tolist() == [[False, True]]
    sixteen = Image.fromarray(np.array([[0, 32767, 32768, 65535]], np.uint16))
    assert hole_from_image(sixteen).tolist() == [[False, False, True, True]]


def test_read_and_write_round_trip(tmp_path):
    hole = generate_mask(64, 80, bucket=2, border=True, seed=1)
    write_mask(tmp_path / "m.png", hole)
    assert set(np.unique(np.asarray(Image.open(tmp_path / "m.png")))) == {0, 255}
    assert np.array_equal(read_mask(tmp_path / "m.png"), hole)


def test_hole_to_mask_is_one_where_known():
    mask = hole_to_mask(np.array([[True, False]]))
    assert mask.dtype == torch.float32 and mask.tolist() == [[[[0.0, 1.0]]]]


def test_resize_is_nearest_neighbour():
    hole = np.array([[True, False], [False, True]])
    resized = resize_hole(hole, (4, 4))
    assert np.array_equal(resized, np.kron(hole, np.ones((2, 2), bool)))


def test_size_mismatch_names_both_sizes():
    with pytest.raises(MaskSizeError, match=r"mask.png is 640×480 but photo.jpg is 641×480"):
        check_mask_size((640, 480), (641, 480), "mask.png", "photo.jpg")
    check_mask_size((640, 480), (640, 480))


def test_mask_of_the_wrong_size_is_refused_from_its_header(tmp_path):
    path = tmp_path / "m.png"
    Image.fromarray(np.zeros((40, 30), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:60])  # truncated: decoding it would fail
    with pytest.raises(MaskSizeError, match=r"mask 'up.png' is 30×40 but image is 31×40"):
        read_mask(io.BytesIO(path.read_bytes()), name="'up.png'", size=(31, 40))
    hole = np.zeros((40, 30), bool)
    hole[5:9, 7:20] = True
    write_mask(path, hole)
    np.testing.assert_array_equal(read_mask(io.BytesIO(path.read_bytes()), size=(30, 40)), hole)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n broken"])
def test_corrupt_mask_files_raise_mask_error_with_the_path(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(MaskError, match=r"cannot read mask .*bad\.png"):
        read_mask(path)
    with pytest.raises(MaskError, match="cannot read mask"):
        read_mask(tmp_path / "missing.png")


# Folders and the published test masks ----------------------------------------------


def write_bucket_folder(folder: Path, per_variant: int = 3) -> dict[str, tuple[int, bool]]:
    """Generated masks with known bucket and border, named so the index says nothing."""
    expected, rng = {}, np.random.default_rng(0)
    for bucket in BUCKETS:
        for border in (False, True):
            for _ in range(per_variant):
                name = f"{rng.integers(10**9):09d}.png"
                write_mask(folder / name, MaskGenerator()(192, 192, rng, bucket=bucket, border=border))
                expected[name] = (bucket, border)
    return expected


def test_scan_assigns_bucket_and_border_from_pixels(tmp_path):
    expected = write_bucket_folder(tmp_path)
    infos = scan_masks(tmp_path)
    assert {info.path.name: (info.bucket, info.border) for info in infos} == expected


def test_scan_of_an_empty_folder_is_an_error(tmp_path):
    with pytest.raises(MaskError, match="no mask images"):
        scan_masks(tmp_path)
    with pytest.raises(NotADirectoryError):
        scan_masks(tmp_path / "missing")


@pytest.mark.skipif(not NVIDIA_MASKS.is_dir(), reason="needs ../shared/data/masks/nvidia_test")
def test_nvidia_masks_are_assigned_from_pixels(tmp_path):
    # 15 masks from each half (no border, then border) of each bucket, copied under
    # shuffled names so that only the pixels can tell.
    rng = np.random.default_rng(0)
    truth = {}
    for bucket in BUCKETS:
        for half in (0, 1):
            start = (bucket - 1) * 2000 + half * 1000
            for index in rng.choice(1000, 15, replace=False) + start:
                name = f"{rng.integers(10**9):09d}.png"
                shutil.copy(NVIDIA_MASKS / f"{index:05d}.png", tmp_path / name)
                truth[name] = (bucket, half == 1)
    infos = load_nvidia_masks(tmp_path)
    assert all(info.width == info.height == 512 for info in infos)
    assert all(info.bucket == truth[info.path.name][0] for info in infos)
    inside = [info for info in infos if not truth[info.path.name][1]]
    assert not any(info.border for info in inside)  # the "no border" halves never touch the band
    touching = [info for info in infos if truth[info.path.name][1]]
    assert sum(info.border for info in touching) >= 0.9 * len(touching)  # a few in the file index do not


def test_resize_to_the_same_size_returns_the_mask_unchanged():
    hole = generate_mask(32, 48, bucket=2, border=True, seed=2)
    assert resize_hole(hole, (48, 32)) is hole


def test_generated_mask_folders_are_written_by_a_library_function(tmp_path):
    from pconv.masks.folder import write_generated_masks

    written = write_generated_masks(tmp_path / "a", 3, (40, 30), seed=5, bucket=2)
    assert [info.path.name for info in written] == ["00000.png", "00001.png", "00002.png"]
    assert {info.bucket for info in written} == {2} and read_mask(written[0].path).shape == (30, 40)
    again = write_generated_masks(tmp_path / "b", 3, (40, 30), seed=5, bucket=2)
    assert [info.hole_ratio for info in again] == [info.hole_ratio for info in written]  # (seed, i) decide
    with pytest.raises(FileExistsError, match="3 files already exist"):
        write_generated_masks(tmp_path / "a", 3, (40, 30))
    assert len(write_generated_masks(tmp_path / "a", 3, (40, 30), overwrite=True)) == 3
