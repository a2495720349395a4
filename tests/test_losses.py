"""Negative mining and the contrastive loss, on hand-computed cases."""

import math

import pytest
import torch
import torch.nn.functional as F

from hsiclip.config import LossConfig
from hsiclip.losses import ContrastiveLoss, curated_contrastive_loss, mine_negatives


def test_hard_negatives_are_the_largest_wrong_logits_and_never_the_positive():
    logits = torch.tensor([[9.0, 1.0, 8.0, 3.0, 7.0, 0.0]])  # the positive (class 0) is the largest
    idx = mine_negatives(logits, torch.tensor([0]), k_hard=2, k_semi=0)
    assert idx.tolist() == [[0, 2, 4]]


def test_hard_negatives_when_the_positive_is_not_the_largest():
    logits = torch.tensor([[5.0, 1.0, 8.0, 3.0, 7.0, 0.0]])
    idx = mine_negatives(logits, torch.tensor([4]), k_hard=3, k_semi=0)
    assert idx[0, 0] == 4
    assert idx[0, 1:].tolist() == [2, 0, 3]


def test_semi_hard_exclude_positive_and_hard_and_are_distinct():
    torch.manual_seed(0)
    logits = torch.randn(200, 10)
    target = torch.randint(0, 10, (200,))
    idx = mine_negatives(logits, target, k_hard=3, k_semi=4)
    assert idx.shape == (200, 8)
    for row, t in zip(idx.tolist(), target.tolist(), strict=True):
        pos, hard, semi = row[0], row[1:4], row[4:]
        assert pos == t
        assert t not in hard and t not in semi
        assert not set(hard) & set(semi)
        assert len(set(semi)) == 4


def test_semi_hard_are_drawn_from_all_remaining_classes():
    torch.manual_seed(0)
    logits = torch.arange(8.0).repeat(4000, 1)  # hard for target 0 are always 7, 6
    idx = mine_negatives(logits, torch.zeros(4000, dtype=torch.long), k_hard=2, k_semi=1)
    counts = torch.bincount(idx[:, 3], minlength=8)
    assert counts[[0, 6, 7]].sum() == 0
    assert (counts[1:6] > 600).all()  # roughly uniform over the 5 remaining classes (800 each)


@pytest.mark.parametrize("num_classes, expect", [(2, (1, 0)), (4, (3, 0)), (6, (4, 1)), (9, (4, 4)), (16, (4, 4))])
def test_fewer_classes_than_k_h_plus_k_s_plus_1(num_classes, expect):
    logits = torch.randn(5, num_classes)
    idx = mine_negatives(logits, torch.zeros(5, dtype=torch.long), k_hard=4, k_semi=4)
    assert idx.shape == (5, 1 + sum(expect))
    assert all(len(set(r)) == len(r) for r in idx.tolist())


def test_loss_value_hand_computed():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])  # positive 0; hard = 1 (k_h=1); semi = one of {2, 3}
    torch.manual_seed(0)
    loss = curated_contrastive_loss(logits, torch.tensor([0]), k_hard=1, k_semi=0)
    assert loss.item() == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + math.exp(1))))
    loss = curated_contrastive_loss(logits, torch.tensor([0]), k_hard=1, k_semi=2)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, torch.tensor([0])).item())


def test_variants():
    logits = torch.randn(8, 16, requires_grad=True)
    target = torch.randint(0, 16, (8,))
    full = ContrastiveLoss(LossConfig(negatives="all"))(logits, target)
    assert full.item() == pytest.approx(F.cross_entropy(logits, target).item())
    no_semi = ContrastiveLoss(LossConfig(negatives="hard"))
    assert (no_semi.k_hard, no_semi.k_semi) == (4, 0)
    no_hard = ContrastiveLoss(LossConfig(negatives="semi"))
    assert (no_hard.k_hard, no_hard.k_semi) == (0, 4)
    loss = ContrastiveLoss(LossConfig())(logits, target)
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    # a curated subset of the negatives can only lower the loss relative to the full softmax
    assert loss.item() <= full.item() + 1e-6
