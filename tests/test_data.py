"""Image reading and the inpainting dataset."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from pconv.data import DataError, DataWarning, ImageReadError, InpaintingDataset, read_rgb
from pconv.masks import generate_mask, write_mask


def photo(width=64, height=48, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_exif_orientation_is_applied(tmp_path):
    pixels = photo(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    image = read_rgb(tmp_path / "rotated.jpg")
    assert image.size == (20, 40)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: Image.new("L", (4, 4), 77), (77, 77, 77)),
        (lambda: Image.new("RGB", (4, 4), (51, 102, 153)).convert("P"), (51, 102, 153)),  # web palette
        (lambda: Image.new("RGBA", (4, 4), (10, 20, 30, 0)), (255, 255, 255)),  # transparent: white
        (lambda: Image.new("RGBA", (4, 4), (10, 20, 30, 255)), (10, 20, 30)),
        (lambda: Image.fromarray(np.full((4, 4), 65535, np.uint16)), (255, 255, 255)),
        (lambda: Image.fromarray(np.full((4, 4), 257 * 100, np.uint16)), (100, 100, 100)),
        (lambda: Image.new("CMYK", (4, 4), (0, 0, 0, 0)), (255, 255, 255)),
    ],
)
def test_modes_become_8_bit_rgb(tmp_path, make, expected):
    path = tmp_path / "image.png" if make().mode != "CMYK" else tmp_path / "image.tif"
    make().save(path)
    image = read_rgb(path)
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == expected


def test_unreadable_image_raises_with_the_path(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ImageReadError, match=r"bad\.jpg"):
        read_rgb(tmp_path / "bad.jpg")


@pytest.fixture
def image_folder(tmp_path):
    """Five photos of several formats in nested folders, plus files that are not images."""
    root = tmp_path / "images"
    (root / "sub" / "deeper").mkdir(parents=True)
    for index, name in enumerate(["a.jpg", "b.png", "sub/c.webp", "sub/d.bmp", "sub/deeper/e.tiff"]):
        Image.fromarray(photo(80, 70, index)).save(root / name)
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"ignored")
    return root


def test_dataset_finds_images_recursively_and_counts_small_ones(image_folder):
    Image.fromarray(photo(30, 20, 9)).save(image_folder / "small.png")
    with pytest.warns(DataWarning, match="1 of 6 images .* smaller than the 64px crop"):
        dataset = InpaintingDataset(image_folder, crop_size=64)
    assert len(dataset) == 6
    small = [p.name for p in dataset.files].index("small.png")
    assert dataset[small][0].shape == (3, 64, 64)  # upscaled to the crop
    assert {p.suffix for p in dataset.files} == {".jpg", ".png", ".webp", ".bmp", ".tiff"}


def test_items_are_image_and_binary_mask(image_folder):
    dataset = InpaintingDataset(image_folder, crop_size=64)
    for index in range(len(dataset)):
        image, mask = dataset[index]
        assert image.shape == (3, 64, 64) and image.dtype == torch.float32
        assert image.min() >= 0 and image.max() <= 1
        assert mask.shape == (1, 64, 64) and set(mask.unique().tolist()) <= {0.0, 1.0}
        assert 0 < mask.mean() < 1


def test_items_depend_only_on_seed_epoch_and_index(image_folder):
    first = InpaintingDataset(image_folder, crop_size=64, seed=3, scale_range=(0.8, 1.2))
    second = InpaintingDataset(image_folder, crop_size=64, seed=3, scale_range=(0.8, 1.2))
    for a, b in zip(first[2], second[2], strict=True):
        assert torch.equal(a, b)
    second.set_epoch(1)
    assert not torch.equal(first[2][1], second[2][1])
    assert not torch.equal(first[2][1], InpaintingDataset(image_folder, crop_size=64, seed=4)[2][1])


def test_loader_workers_do_not_change_the_batches(image_folder):
    dataset = InpaintingDataset(image_folder, crop_size=32)
    batches = [
        list(torch.utils.data.DataLoader(dataset, batch_size=3, num_workers=workers)) for workers in (0, 2)
    ]
    for (x0, m0), (x2, m2) in zip(*batches, strict=True):
        assert torch.equal(x0, x2) and torch.equal(m0, m2)


def test_validation_crops_are_centred_and_fixed(image_folder):
    dataset = InpaintingDataset(image_folder, crop_size=64, train=False)
    image, _ = dataset[0]  # a.jpg, 80×70: the centre crop starts at (8, 3)
    expected = np.asarray(read_rgb(dataset.files[0]))[3:67, 8:72]
    assert torch.equal(image, torch.from_numpy(expected / np.float32(255)).permute(2, 0, 1))
    dataset.set_epoch(5)
    assert torch.equal(dataset[0][1], InpaintingDataset(image_folder, crop_size=64, train=False)[0][1])


def test_corrupt_files_are_skipped_with_one_warning_each(image_folder):
    (image_folder / "corrupt.jpg").write_bytes(b"definitely not a jpeg")
    truncated = image_folder / "truncated.jpg"
    Image.fromarray(photo(80, 80, 5)).save(truncated, quality=90)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # the header survives, half of the data does not
    with pytest.warns(DataWarning) as caught:
        dataset = InpaintingDataset(image_folder, crop_size=64)
    assert any("corrupt.jpg" in str(w.message) for w in caught)
    assert len(dataset) == 6  # truncated.jpg passes the header check...
    index = [p.name for p in dataset.files].index("truncated.jpg")
    with pytest.warns(DataWarning, match=r"truncated\.jpg"):
        image, _ = dataset[index]  # ...and is replaced by the next image when it fails to decode
    assert image.shape == (3, 64, 64)
    assert {p.name for p in dataset.skipped} == {"corrupt.jpg", "truncated.jpg"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset[index]  # already skipped: no second warning


def test_folders_without_usable_images_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no usable image"):
        InpaintingDataset(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"no usable image .* \(1 unreadable"), pytest.warns(DataWarning):
        InpaintingDataset(tmp_path)
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        InpaintingDataset(tmp_path / "missing")


def test_masks_from_a_folder_are_augmented_to_the_crop(image_folder, tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    for seed in range(3):
        write_mask(masks / f"{seed}.png", generate_mask(100, 120, bucket=4, border=True, seed=seed))
    dataset = InpaintingDataset(image_folder, crop_size=48, masks=masks)
    holes = [1 - dataset[i][1].mean().item() for i in range(len(dataset))]
    assert all(0 < hole < 1 for hole in holes)
    assert len(set(holes)) > 1
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no mask images"):
        InpaintingDataset(image_folder, masks=empty)


def test_step_sampler_splits_each_global_batch_between_ranks():
    from itertools import islice

    from pconv.data import StepSampler

    ranks = [list(islice(StepSampler(3, rank=r, world_size=2), 9)) for r in range(2)]
    assert ranks[0] == [0, 1, 2, 6, 7, 8, 12, 13, 14]
    assert ranks[1] == [3, 4, 5, 9, 10, 11, 15, 16, 17]
    resumed = list(islice(StepSampler(3, rank=1, world_size=2, start_step=2), 3))
    assert resumed == ranks[1][6:]


def test_epoch_stream_visits_every_image_once_per_epoch_in_a_new_order(image_folder):
    from pconv.data import EpochStream

    dataset = InpaintingDataset(image_folder, crop_size=16, seed=3)
    stream = EpochStream(dataset, seed=3)
    n = len(dataset)
    orders = [[int(stream._permutation(e)[i]) for i in range(n)] for e in (0, 1)]
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(n)) and orders[0] != orders[1]
    image, mask = stream[n + 2]  # epoch 1, third position
    expected_image, expected_mask = dataset.sample(orders[1][2], epoch=1)
    assert torch.equal(image, expected_image) and torch.equal(mask, expected_mask)
