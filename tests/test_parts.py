"""Tests of reidlab.models.parts and reidlab.parsing: part features, the part model, SCWM's cascaded parsing, mask smoothing, losses, IoU."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from reidlab.data.datasets import Record
from reidlab.models import (
    PartHead,
    PartReIDModel,
    build_model,
    masked_part_features,
    stripe_features,
)
from reidlab.parsing import (
    DEFAULT_ETA,
    MaskSmoother,
    cascade_steps,
    cascaded_parsing,
    diversity_loss,
    kmeans_1d,
    load_part_masks,
    parsing_iou,
    parsing_loss,
)

# ------------------------------------------------------------------------------------ part features


def test_part_head_shape_and_masked_features_equal_naive_loop():
    torch.manual_seed(0)
    fmap = torch.randn(2, 5, 6, 4)
    logits = PartHead(5, 3)(fmap)
    assert logits.shape == (2, 3, 6, 4)
    probs = logits.softmax(dim=1)
    naive = torch.zeros(2, 3, 5)
    for b in range(2):
        for k in range(3):
            for c in range(5):
                naive[b, k, c] = (probs[b, k] * fmap[b, c]).sum() / (6 * 4)  # GAP over all positions
    torch.testing.assert_close(masked_part_features(fmap, probs), naive)


@pytest.mark.parametrize("height", [6, 7, 8])
def test_stripe_features_equal_naive_slice_mean(height):
    fmap = torch.randn(2, 4, height, 3)
    stripes = stripe_features(fmap, 3)
    assert stripes.shape == (2, 3, 4)
    for i in range(3):
        start, end = math.floor(i * height / 3), math.ceil((i + 1) * height / 3)
        torch.testing.assert_close(stripes[:, i], fmap[:, :, start:end].mean(dim=(2, 3)))
    with pytest.raises(ValueError, match="num_stripes must be in 1..6"):
        stripe_features(torch.randn(1, 2, 6, 2), 7)


def test_masked_part_features_checks_shapes():
    with pytest.raises(ValueError, match="must match fmap"):
        masked_part_features(torch.randn(2, 5, 6, 4), torch.randn(2, 3, 5, 4))


# ------------------------------------------------------------------------------------ the part model


@pytest.mark.parametrize("part_source, num_parts", [("parsing", 4), ("stripes", 3)])
def test_part_model_from_model_keeps_the_global_embedding(part_source, num_parts):
    torch.manual_seed(0)
    base = build_model("labnet", pretrained=False).eval()
    images = torch.randn(3, 3, 32, 16)
    expected = base(images)
    model = PartReIDModel.from_model(base, num_parts=num_parts, part_source=part_source)
    assert model.backbone is base.backbone and model.neck is base.neck and model.pool is base.pool
    assert not model.training and model.num_parts == num_parts
    torch.testing.assert_close(model(images), expected)
    out = model.forward_parts(images)
    torch.testing.assert_close(out.global_, expected)
    assert out.parts.shape == (3, num_parts, 128)
    torch.testing.assert_close(out.parts.norm(dim=2), torch.ones(3, num_parts))
    assert out.fmap.shape == (3, 128, 4, 2)
    if part_source == "parsing":
        assert out.part_logits.shape == (3, num_parts, 4, 2)
        pooled = masked_part_features(out.fmap, out.part_logits.softmax(dim=1))
    else:
        assert out.part_logits is None and model.part_head is None
        pooled = stripe_features(out.fmap, 3)
    for k in range(num_parts):  # each part through its own neck
        torch.testing.assert_close(out.parts[:, k], model.part_necks[k](pooled[:, k]))


def test_part_model_defaults_and_errors():
    assert PartReIDModel(build_model("labnet", pretrained=False).backbone).num_parts == 4
    assert PartReIDModel(build_model("labnet", pretrained=False).backbone, part_source="stripes").num_parts == 3
    with pytest.raises(ValueError, match="part_source must be one of"):
        PartReIDModel(build_model("labnet", pretrained=False).backbone, part_source="grid")
    with pytest.raises(ValueError, match="num_parts must be >= 2"):
        PartReIDModel(build_model("labnet", pretrained=False).backbone, num_parts=1)


# ------------------------------------------------------------------------------------ cascaded parsing


def _directions(count, channels, seed):
    return F.normalize(torch.randn(count, channels, generator=torch.Generator().manual_seed(seed)), dim=1)


def _banded_map(bands, channels=16, seed=0, noise=0.05):
    """A 16 x 8 map: small random background vectors, body columns 2..5 filled band by band.

    ``bands`` is a list of ``(rows, direction, magnitude)``.
    """
    gen = torch.Generator().manual_seed(seed)
    fmap = 0.1 * F.normalize(torch.randn(channels, 16, 8, generator=gen), dim=0)
    for rows, direction, magnitude in bands:
        for r in rows:
            for c in range(2, 6):
                fmap[:, r, c] = magnitude * F.normalize(direction + noise * torch.randn(channels, generator=gen), dim=0)
    return fmap


@pytest.mark.parametrize("foreground_correction", [False, True])
@pytest.mark.parametrize("space_correction", [False, True])
def test_cascade_recovers_three_bands_top_to_bottom(foreground_correction, space_correction):
    dirs = _directions(3, 16, seed=1)
    # Listed bottom band first: the numbering must come from the height, not the order of discovery.
    fmap = _banded_map([(range(10, 14), dirs[0], 5.0), (range(2, 6), dirs[1], 5.0), (range(6, 10), dirs[2], 5.0)])
    steps = cascade_steps(fmap, num_parts=4, foreground_correction=foreground_correction,
                          space_correction=space_correction)
    expected = torch.full((16, 8), 3)
    for part, rows in enumerate([range(2, 6), range(6, 10), range(10, 14)]):
        expected[list(rows), 2:6] = part
    assert torch.equal(steps.labels, expected)
    assert torch.equal(steps.foreground, expected < 3)
    torch.testing.assert_close(steps.magnitude, fmap.norm(dim=0))
    assert steps.labels.dtype == torch.int64


def test_foreground_correction_keeps_a_weak_foreground_region():
    dirs = _directions(2, 8, seed=2)
    # Background magnitude 0.1, weak foreground 0.5, a small salient region 10: two classes put the
    # weak region with the background (the salient centre pulls the threshold up), three keep it.
    fmap = _banded_map([(range(8, 14), dirs[0], 0.5), (range(2, 4), dirs[1], 10.0)], channels=8, noise=0.0)
    weak = torch.zeros(16, 8, dtype=torch.bool)
    weak[8:14, 2:6] = True
    plain = cascade_steps(fmap, num_parts=4, foreground_correction=False)
    corrected = cascade_steps(fmap, num_parts=4, foreground_correction=True)
    assert not plain.foreground[weak].any() and (plain.labels[weak] == 3).all()
    assert corrected.foreground[weak].all() and (corrected.labels[weak] < 3).all()
    assert torch.equal(corrected.magnitude_classes[weak], torch.ones(24, dtype=torch.long))  # regular class
    assert (corrected.magnitude_classes[2:4, 2:6] == 2).all()  # salient
    background = fmap.norm(dim=0) < 0.2
    assert background.sum() == 16 * 8 - 24 - 8 and (corrected.magnitude_classes[background] == 0).all()


def test_space_correction_separates_far_regions_with_identical_features():
    dirs = _directions(2, 16, seed=3)
    top, middle, bottom = range(1, 5), range(6, 10), range(11, 15)
    fmap = _banded_map([(top, dirs[0], 5.0), (middle, dirs[1], 5.0), (bottom, dirs[0], 5.0)], noise=0.1)
    plain = cascade_steps(fmap, num_parts=4, space_correction=False).labels
    corrected = cascade_steps(fmap, num_parts=4, space_correction=True, eta=6.0).labels
    shared = set(plain[list(top), 2:6].flatten().tolist()) & set(plain[list(bottom), 2:6].flatten().tolist())
    assert shared, "plain clustering should merge the top and bottom regions"
    for part, rows in enumerate([top, middle, bottom]):
        assert (corrected[list(rows), 2:6] == part).all()
    # A very large eta is the same as no space correction (SCWM 4.3).
    assert torch.equal(cascade_steps(fmap, num_parts=4, eta=1e9).labels, plain)


def test_cascaded_parsing_batches_equal_per_image_steps():
    torch.manual_seed(0)
    fmaps = torch.randn(5, 6, 8, 4).relu()
    labels = cascaded_parsing(fmaps, num_parts=3, eta=3.0)
    assert labels.shape == (5, 8, 4) and labels.dtype == torch.int64
    assert torch.equal(labels, cascaded_parsing(fmaps, num_parts=3, eta=3.0, batch_size=2, seed=7))
    for b in range(5):
        assert torch.equal(labels[b], cascade_steps(fmaps[b], num_parts=3, eta=3.0).labels)
    assert labels.min() >= 0 and labels.max() <= 2
    # Parts are numbered by the mean row of their positions.
    for b in range(5):
        heights = [torch.nonzero(labels[b] == k)[:, 0].float().mean() for k in range(2) if (labels[b] == k).any()]
        assert heights == sorted(heights)


def test_cascade_degenerate_inputs():
    # Constant (zero) maps: no foreground.
    assert torch.equal(cascaded_parsing(torch.zeros(2, 4, 6, 3), num_parts=4), torch.full((2, 6, 3), 3))
    # Two foreground positions and three parts: one part each, top to bottom, the third part empty.
    fmap = torch.zeros(4, 6, 3)
    fmap[:, 4, 1] = torch.tensor([1.0, 0, 0, 0])
    fmap[:, 1, 2] = torch.tensor([0, 1.0, 0, 0])
    for fc in (False, True):
        labels = cascade_steps(fmap, num_parts=4, foreground_correction=fc).labels
        expected = torch.full((6, 3), 3)
        expected[1, 2], expected[4, 1] = 0, 1
        assert torch.equal(labels, expected)
    # One part plus background: the whole foreground is part 0.
    labels = cascade_steps(_banded_map([(range(2, 14), _directions(1, 16, 0)[0], 5.0)]), num_parts=2).labels
    assert set(labels[2:14, 2:6].flatten().tolist()) == {0} and (labels[:, :2] == 1).all()
    assert cascaded_parsing(torch.zeros(0, 4, 6, 3), num_parts=4).shape == (0, 6, 3)
    assert torch.equal(cascade_steps(torch.ones(4, 1, 1), num_parts=4).labels, torch.full((1, 1), 3))


def test_cascade_errors():
    with pytest.raises(ValueError, match="num_parts must be >= 2"):
        cascaded_parsing(torch.randn(1, 4, 6, 3), num_parts=1)
    with pytest.raises(ValueError, match="eta must be a positive distance"):
        cascaded_parsing(torch.randn(1, 4, 6, 3), num_parts=4, eta=0)
    with pytest.raises(ValueError, match=r"one \(C, h, w\) feature map"):
        cascade_steps(torch.randn(1, 4, 6, 3), num_parts=4)
    with pytest.raises(ValueError, match=r"fmaps must be \(B, C, h, w\)"):
        cascaded_parsing(torch.randn(4, 6, 3), num_parts=4)
    assert DEFAULT_ETA == 6.0  # measured: benchmarks/bench_parsing.py --quality (the engine's default too)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_kmeans_1d_reaches_the_brute_force_optimum(num_classes):
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(1, 0.3, (20, 4)), rng.normal(4, 1, (20, 2)), rng.normal(9, 2, (20, 2))], 1)
    classes = kmeans_1d(torch.tensor(values), num_classes).numpy()
    # Every assignment of the 8 values to the classes (not only intervals), each class non-empty.
    labelings = np.array([lab for lab in itertools.product(range(num_classes), repeat=8)
                          if len(set(lab)) == num_classes])
    onehot = labelings[:, :, None] == np.arange(num_classes)  # (L, 8, k)

    def within(x, onehot):
        counts = onehot.sum(-2)
        means = (onehot * x[:, None]).sum(-2) / counts
        return (onehot * (x[:, None] - means[..., None, :]) ** 2).sum((-1, -2))

    for x, ours in zip(values, classes):
        assert within(x, ours[:, None] == np.arange(num_classes)) == pytest.approx(within(x, onehot).min())
        centres = [x[ours == c].mean() for c in range(num_classes)]
        assert centres == sorted(centres) and len(np.unique(ours)) == num_classes
    # Equal values are never split; fewer distinct values give fewer classes.
    assert kmeans_1d(torch.tensor([[2.0, 2.0, 5.0, 5.0]]), 3).tolist() == [[0, 0, 1, 1]]


# ------------------------------------------------------------------------------------ mask smoothing


def test_mask_smoother_gamma_schedule():
    smoother = MaskSmoother(3, 4, (2, 2), gamma=0.2, gamma_epochs=20)
    assert [smoother.gamma_at(e) for e in (0, 10, 20, 30)] == pytest.approx([0.2, 0.1, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\)"):
        MaskSmoother(3, 4, (2, 2), gamma=1.0)


def test_mask_smoother_equals_naive_eq3():
    num, parts, h, w = 6, 4, 3, 2
    smoother = MaskSmoother(num, parts, (h, w), gamma=0.3, gamma_epochs=4)
    naive = {}
    gen = torch.Generator().manual_seed(0)
    schedule = [(0, [0, 1, 2]), (0, [3]), (1, [0, 3, 4]), (2, [1, 0]), (3, [5, 0]), (5, [0, 2])]
    for epoch, idx in schedule:
        labels = torch.randint(0, parts, (len(idx), h, w), generator=gen)
        smoother.update(torch.tensor(idx), labels, epoch)
        gamma = 0.3 * max(0.0, 1 - epoch / 4)
        for i, lab in zip(idx, labels):
            onehot = np.zeros((parts, h, w))
            for y in range(h):
                for x in range(w):
                    onehot[lab[y, x], y, x] = 1.0
            naive[i] = onehot if i not in naive else gamma * naive[i] + (1 - gamma) * onehot
    seen = sorted(naive)
    np.testing.assert_allclose(smoother.lookup(torch.tensor(seen)).numpy(), np.stack([naive[i] for i in seen]),
                               rtol=1e-6, atol=1e-6)
    assert smoother.seen.tolist() == [True] * num
    restored = MaskSmoother(num, parts, (h, w), gamma=0.3, gamma_epochs=4)
    restored.load_state_dict(smoother.state_dict())
    assert torch.equal(restored(torch.arange(num)), smoother(torch.arange(num)))


def test_mask_smoother_errors():
    smoother = MaskSmoother(4, 3, (2, 2))
    with pytest.raises(ValueError, match=r"no pseudo mask yet for samples \[1\]"):
        smoother(torch.tensor([1]))
    with pytest.raises(ValueError, match=r"labels must be in 0..2"):
        smoother.update(torch.tensor([0]), torch.full((1, 2, 2), 3), 0)
    with pytest.raises(ValueError, match=r"labels must be \(B, h, w\)"):
        smoother.update(torch.tensor([0]), torch.zeros(1, 3, 2, dtype=torch.long), 0)


# ------------------------------------------------------------------------------------ losses


def test_parsing_loss_equals_naive_formula():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 2)
    target = torch.rand(2, 3, 4, 2)
    target = target / target.sum(dim=1, keepdim=True)
    probs = logits.softmax(dim=1)
    naive = 0.0
    for b, y, x in itertools.product(range(2), range(4), range(2)):
        naive -= sum(target[b, k, y, x] * torch.log(probs[b, k, y, x]) for k in range(3))
    torch.testing.assert_close(parsing_loss(logits, target), naive / (2 * 4 * 2))
    with pytest.raises(ValueError, match="same"):
        parsing_loss(logits, target[:, :2])


def test_diversity_loss_equals_naive_formula():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 5, 2)
    probs = logits.softmax(dim=1)
    l = 4
    naive = 0.0
    for b in range(3):
        total = 0.0
        for i in range(l - 1):
            for j in range(i + 1, l):
                total += (probs[b, i] * probs[b, j]).sum()
        naive += 2 / (l * (l - 1)) * total / (5 * 2)  # per position (the reduction of Eq. 4)
    torch.testing.assert_close(diversity_loss(logits), naive / 3)
    # Uniform maps: every pair overlaps 1 / l^2 per position, so the loss is 1 / 16.
    assert diversity_loss(torch.zeros(1, 4, 5, 2)).item() == pytest.approx(1 / 16)
    # One-hot maps do not overlap.
    assert diversity_loss(100 * F.one_hot(torch.randint(0, 4, (2, 5, 2)), 4).permute(0, 3, 1, 2).float()).item() == \
        pytest.approx(0, abs=1e-6)


# ------------------------------------------------------------------------------------ parsing quality


def test_parsing_iou_perfect_and_permuted_predictions():
    gen = torch.Generator().manual_seed(0)
    gt = torch.randint(0, 6, (3, 8, 4), generator=gen)
    score = parsing_iou(gt, gt, num_parts=6)
    assert score.miou == pytest.approx(1.0) and score.matching == [(k, k) for k in range(6)]
    permutation = torch.tensor([3, 0, 5, 1, 4, 2])  # region r is predicted as part permutation[r]
    score = parsing_iou(permutation[gt], gt, num_parts=6)
    assert score.miou == pytest.approx(1.0)
    assert sorted(score.matching) == sorted((int(permutation[r]), r) for r in range(6))
    assert set(score.per_part) == {"part0", "part1", "part2", "part3", "part4", "background"}
    # Predictions at a quarter of the size are upsampled (nearest) to the ground truth.
    coarse = torch.randint(0, 4, (2, 4, 2), generator=gen)
    fine = coarse.repeat_interleave(2, 1).repeat_interleave(2, 2)
    assert parsing_iou(coarse, fine, num_parts=4).miou == pytest.approx(1.0)


def test_parsing_iou_matrix_equals_naive_counts():
    gen = torch.Generator().manual_seed(1)
    pred = torch.randint(0, 3, (4, 6, 3), generator=gen)
    gt = torch.randint(0, 6, (4, 6, 3), generator=gen)
    score = parsing_iou(pred, gt, num_parts=3)
    for k in range(3):
        for r in range(6):
            inter = ((pred == k) & (gt == r)).sum().item()
            union = ((pred == k) | (gt == r)).sum().item()
            assert score.iou[k, r] == pytest.approx(inter / union if union else 0.0)
    best = max(sum(score.iou[k, regions[k]] for k in range(3)) for regions in itertools.permutations(range(6), 3))
    assert score.miou == pytest.approx(best / 3)
    with pytest.raises(ValueError, match=r"pred labels must be in 0..2"):
        parsing_iou(pred + 1, gt, num_parts=3)


def test_load_part_masks(tmp_path):
    records = []
    for i in range(2):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((8, 4), i + 1, dtype=np.uint8)).save(path)
        records.append(Record(str(tmp_path / f"{i}.jpg"), i, 0, str(path)))
    masks = load_part_masks(records)
    assert masks.shape == (2, 8, 4) and masks.dtype == torch.int64 and masks[1].unique().tolist() == [2]
    assert load_part_masks(records, size=(4, 2)).shape == (2, 4, 2)
    with pytest.raises(ValueError, match="has no mask_path: only SynthMarket"):
        load_part_masks([Record("a.jpg", 1, 0)])
