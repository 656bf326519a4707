"""Ink-and-paper augmentation: grey and inverted copies in training, untouched images in validation."""

import torch
from fastai.vision.all import TensorImage

from trainer.augment import InkAndPaper


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
