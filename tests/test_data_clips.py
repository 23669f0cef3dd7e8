"""DferClipDataset: the one sampling definition, the runtime's frame preparation, and seeded augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgefer.data import ClipRecord, DferClipDataset, random_resized_crop_box, read_annotation_list
from edgefer.data.images import read_image
from edgefer.data.records import list_frames
from edgefer.metadata import ModelMetadata
from edgefer.preprocess import prepare_clip
from edgefer.sampling import dfew_test_indices, dfew_train_indices


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Frame folders of 5, 9, 24 and 40 frames, each frame a different random 20 x 30 image."""
    import cv2

    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    records = []
    for n, frames in enumerate((5, 9, 24, 40)):
        folder = root / f"c{n}"
        folder.mkdir()
        for i in range(frames):
            cv2.imwrite(str(folder / f"{i + 1}.png"), rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
        records.append(ClipRecord(folder, frames, n, f"list:{n + 1}"))
    return records


def test_test_clip_is_the_runtimes(clips):
    """Test mode = dfew_test_indices + prepare_frame: what the runtime prepares from the same BGR frames."""
    ds = DferClipDataset(clips, train=False, frame_size=16)
    metadata = ModelMetadata(model="msstnet", task="dfer", labels=("a",) * 7, clip_length=16, frame_size=(16, 16))
    for i, record in enumerate(clips):
        clip, label = ds[i]
        assert clip.dtype == torch.float32 and clip.shape == (16, 3, 16, 16)
        assert label.dtype == torch.int64 and label.shape == () and int(label) == record.label
        np.testing.assert_array_equal(ds.frame_indices(i), dfew_test_indices(record.num_frames))
        frames = [read_image(p) for p in list_frames(record.frame_dir)]
        np.testing.assert_array_equal(clip.numpy(), prepare_clip(frames, metadata))
        assert 0.0 <= clip.min() and clip.max() <= 1.0


def test_train_sampling_is_sampling_modules(clips):
    ds = DferClipDataset(clips, train=True, frame_size=16, seed=3)
    for i, record in enumerate(clips):
        expected = dfew_train_indices(record.num_frames, ds.rng(i))  # the same generator, first draw
        np.testing.assert_array_equal(ds.frame_indices(i), expected)


def test_frame_order_is_natural(clips):
    names = [p.name for p in list_frames(clips[3].frame_dir)]
    assert names[:11] == [f"{i}.png" for i in range(1, 12)]  # 2.png before 10.png


def test_augmentation_is_seeded(clips):
    def draw(seed, epoch, i=3):
        ds = DferClipDataset(clips, train=True, frame_size=16, seed=seed)
        ds.set_epoch(epoch)
        return ds[i][0]

    assert torch.equal(draw(0, 0), draw(0, 0))
    assert not torch.equal(draw(0, 0), draw(1, 0))
    assert not torch.equal(draw(0, 0), draw(0, 1))
    assert not torch.equal(draw(0, 0, 2), draw(0, 0, 3)[:, :, :, :])


def test_one_crop_and_one_flip_per_clip(clips, tmp_path):
    """A clip of identical frames stays identical frame to frame: one crop box and one flip for all of them."""
    import cv2

    folder = tmp_path / "same"
    folder.mkdir()
    image = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    for i in range(12):
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    ds = DferClipDataset([ClipRecord(folder, 12, 0)], train=True, frame_size=16)
    flips = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        clip = ds[0][0]
        assert torch.equal(clip, clip[:1].expand_as(clip))
        rng = ds.rng(0)
        dfew_train_indices(12, rng)
        top, left, h, w = random_resized_crop_box(40, 40, rng)
        flip = rng.random() < 0.5
        flips.add(flip)
        metadata = ModelMetadata(model="m", task="dfer", labels=("a",), clip_length=16, frame_size=(16, 16))
        expected = prepare_clip([image[top:top + h, left:left + w]], metadata)[0]
        np.testing.assert_allclose(clip[0].numpy(), expected[..., ::-1] if flip else expected)
    assert flips == {True, False}


def test_no_augment_keeps_full_frame(clips):
    ds = DferClipDataset(clips, train=True, frame_size=16, augment=False)
    metadata = ModelMetadata(model="m", task="dfer", labels=("a",), clip_length=16, frame_size=(16, 16))
    frames = [read_image(p) for p in list_frames(clips[2].frame_dir)]
    idx = ds.frame_indices(2)
    np.testing.assert_array_equal(ds[2][0].numpy(), np.stack([prepare_clip([frames[i]], metadata)[0] for i in idx]))


def test_crop_box_bounds():
    rng = np.random.default_rng(0)
    areas = []
    for _ in range(500):
        top, left, h, w = random_resized_crop_box(60, 90, rng)
        assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 90 and h >= 1 and w >= 1
        assert 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05 or (h, w) == (60, 80)  # ratio range, or the fallback box
        top, left, h, w = random_resized_crop_box(64, 64, rng)
        areas.append(h * w / 64 ** 2)
    assert 0.075 < min(areas) < 0.15 and max(areas) > 0.9  # the 0.08..1 area range is used
    with pytest.raises(ValueError):
        random_resized_crop_box(10, 10, rng, scale=(0.5, 0.1))


def test_changed_folder_is_reported(tmp_path):
    import cv2

    folder = tmp_path / "c"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "l.txt").write_text("c 3 0\n")
    records = read_annotation_list(tmp_path / "l.txt")
    (folder / "2.png").unlink()
    with pytest.raises(Exception, match=r"l\.txt:1: frame folder .* now holds 2 images"):
        DferClipDataset(records, train=False, frame_size=8)[0]
