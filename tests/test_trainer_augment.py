"""Our augmentations (ink and paper, page crops, mounts, low-quality copies) touch training images, never validation."""

import random

import numpy as np
import pytest
import torch
from datasets import make_dataset
from fastai.vision.all import PILImage, TensorImage
from image_factory import character_page
from PIL import Image

from trainer.augment import CharacterCrop, InkAndPaper, LowQualityCopy, Mount, PageCrop
from trainer.config import TrainConfig
from trainer.data import scan_dataset
from trainer.train import make_dataloaders


def _batch() -> TensorImage:
    torch.manual_seed(0)
    return TensorImage(torch.rand(64, 3, 8, 8))


def test_invert_and_grey_in_training():
    x = _batch()
    assert torch.allclose(InkAndPaper(p_invert=1.0)(x, split_idx=0), 1 - x)
    grey = InkAndPaper(p_grey=1.0)(x, split_idx=0)
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    assert torch.allclose(grey[:, 0], x.mean(dim=1))


def test_probabilities_pick_some_images_and_spare_others():
    x = _batch()
    out = InkAndPaper(p_invert=0.5)(x, split_idx=0)
    inverted = torch.isclose(out, 1 - x).flatten(1).all(dim=1)
    unchanged = torch.isclose(out, x).flatten(1).all(dim=1)
    assert (inverted | unchanged).all()
    assert 10 < int(inverted.sum()) < 54


def test_validation_is_never_augmented():
    x = _batch()
    assert torch.equal(InkAndPaper(p_grey=1.0, p_invert=1.0)(x, split_idx=1), x)


def _page() -> PILImage:
    return PILImage(Image.new("RGB", (400, 600), "white"))


def test_page_crop_cuts_a_part_of_the_page_in_training():
    random.seed(0)
    crop = PageCrop(min_scale=0.2, p=1.0)
    sizes = [crop((_page(),), split_idx=0)[0].size for _ in range(50)]
    areas = [w * h / (400 * 600) for w, h in sizes]
    assert all(0.2 * 0.7 < a <= 1.0 for a in areas)
    assert min(areas) < 0.4 and len(set(sizes)) > 40
    assert all(0.5 < (w / 400) / (h / 600) < 2 for w, h in sizes), "the page's proportions are kept"


def test_page_crop_leaves_validation_and_unpicked_images_whole():
    assert PageCrop(min_scale=0.2, p=1.0)((_page(),), split_idx=1)[0].size == (400, 600)
    assert PageCrop(min_scale=0.2, p=0.0)((_page(),), split_idx=0)[0].size == (400, 600)


def test_mount_shows_the_page_as_a_fan_or_with_margins_in_training():
    random.seed(1)
    mount = Mount(p=1.0)
    outs = [mount((_page(),), split_idx=0)[0] for _ in range(40)]
    assert all(isinstance(o, PILImage) and o.mode == "RGB" for o in outs)
    fans = [o for o in outs if o.size == (400, 600)]
    framed = [o for o in outs if o.size != (400, 600)]
    assert 5 < len(fans) < 35 and all(w > 400 and h > 600 for w, h in (o.size for o in framed))
    assert all(np.asarray(o)[300, 200].tolist() == [255, 255, 255] for o in fans), "the middle of a fan is the page"
    assert len({tuple(np.asarray(o)[0, 0]) for o in fans}) > 1, "mounts come in many colours"


def test_mount_leaves_validation_alone():
    assert Mount(p=1.0)((_page(),), split_idx=1)[0].size == (400, 600)
    page = _page()
    assert np.array_equal(np.asarray(Mount(p=0.0)((page,), split_idx=0)[0]), np.asarray(page))


def test_character_crop_cuts_one_character_in_training_only():
    random.seed(2)
    page, _ = character_page()
    crops = [CharacterCrop(p=1.0)((PILImage(page),), split_idx=0)[0] for _ in range(30)]
    assert all(isinstance(c, PILImage) and 48 < c.width < 80 and 48 < c.height < 80 for c in crops)
    assert len({c.size for c in crops}) > 5, "the blank around the character varies"
    assert CharacterCrop(p=1.0)((PILImage(page),), split_idx=1)[0].size == page.size
    assert CharacterCrop(p=0.0)((PILImage(page),), split_idx=0)[0].size == page.size


def test_low_quality_copy_keeps_size_and_softens_edges_in_training():
    random.seed(1)
    sharp = Image.new("RGB", (128, 128), "white")
    sharp.paste((0, 0, 0), (40, 20, 88, 108))
    copy = LowQualityCopy(p=1.0)((PILImage(sharp),), split_idx=0)[0]
    assert copy.size == (128, 128) and copy.mode == "RGB"
    grey = np.asarray(copy.convert("L"), dtype=float)
    assert ((grey > 30) & (grey < 225)).sum() > 100, "the stroke's edges are blurred into intermediate tones"


def test_low_quality_copy_leaves_validation_alone():
    page = _page()
    assert LowQualityCopy(p=1.0)((page,), split_idx=1)[0] is page


@pytest.mark.parametrize(("n_train", "lone"), [(17, True), (16, False), (19, False)])
def test_a_lone_last_training_batch_is_dropped(tmp_path, n_train, lone):
    """Head BatchNorm cannot train on one image: 17 training images at bs 8 would leave one alone."""
    dataset = scan_dataset(make_dataset(tmp_path, per_class=7))
    valid_idx = list(range(21 - n_train))
    config = TrainConfig(data=tmp_path, out=tmp_path / "out", bs=8)
    dls = make_dataloaders(dataset, valid_idx, 32, config, torch.device("cpu"))
    sizes = [len(y) for _, y in dls.train]
    assert min(sizes) > 1 and (sum(sizes) == n_train - 1) == lone
