"""Part-based identity and metric losses (SCWM Eq. 13-15, PPLR's AALS / PGLR / SoftTripletLoss): naive parity."""

import math

import pytest
import torch
import torch.nn.functional as F

from reidlab.training.losses import (
    IdentityClassifier,
    agreement_label_smoothing_loss,
    part_guided_refinement_loss,
    soft_triplet_loss,
)


def generator(seed):
    return torch.Generator().manual_seed(seed)


def unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=generator(seed), dtype=torch.float64), dim=-1)


def naive_softmax(values):
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def naive_soft_cross_entropy(logits, label):
    """-sum_k label_k log softmax(logits)_k for one sample (lists)."""
    return -sum(t * math.log(p) for t, p in zip(label, naive_softmax(logits)))


def naive_aals(logits, targets, alpha):
    """SCWM Eq. 13 + Eq. 15's part term with loops."""
    batch, num_classes = logits.shape
    total = 0.0
    for b in range(batch):
        a = float(alpha[b])
        label = [a * (k == int(targets[b])) + (1 - a) / num_classes for k in range(num_classes)]
        total += naive_soft_cross_entropy(logits[b].tolist(), label)
    return total / batch


def naive_pglr(global_logits, part_logits, targets, alpha, beta):
    """SCWM Eq. 14-15 global term with loops."""
    batch, num_parts, num_classes = part_logits.shape
    total = 0.0
    for b in range(batch):
        part_weights = naive_softmax(alpha[b].tolist())
        part_preds = [naive_softmax(part_logits[b, k].tolist()) for k in range(num_parts)]
        label = []
        for c in range(num_classes):
            ensemble = sum(part_weights[k] * part_preds[k][c] for k in range(num_parts))
            label.append(beta * (c == int(targets[b])) + (1 - beta) * ensemble)
        total += naive_soft_cross_entropy(global_logits[b].tolist(), label)
    return total / batch


def naive_soft_triplet(features, targets):
    """Batch-hard: farthest positive, closest negative by Euclidean distance; log(1 + exp(d_ap - d_an))."""
    batch = features.shape[0]
    total = 0.0
    for i in range(batch):
        positives = [float((features[i] - features[j]).norm()) for j in range(batch) if targets[j] == targets[i]]
        negatives = [float((features[i] - features[j]).norm()) for j in range(batch) if targets[j] != targets[i]]
        if negatives:
            total += math.log(1 + math.exp(max(positives) - min(negatives)))
    return total / batch


@pytest.fixture
def batch():
    targets = torch.tensor([0, 2, 1, 2, 0, 3])
    logits = 4 * torch.randn(6, 5, generator=generator(1), dtype=torch.float64)
    part_logits = 4 * torch.randn(6, 3, 5, generator=generator(2), dtype=torch.float64)
    alpha = torch.rand(6, 3, generator=generator(3), dtype=torch.float64)
    return logits, part_logits, targets, alpha


# ----------------------------------------------------------------------------- IdentityClassifier
def test_identity_classifier_logits_are_cosines_over_tau():
    centroids = 3 * torch.randn(3, 4, 8, generator=generator(0), dtype=torch.float64)  # stored normalised
    classifier = IdentityClassifier(centroids, temperature=0.1)
    features = 2 * unit(5, 3, 8, seed=1)  # not unit norm: the classifier normalises them
    logits = classifier(features)
    values = logits.detach()
    assert logits.shape == (5, 3, 4) and (classifier.num_streams, classifier.num_classes) == (3, 4)
    for b in range(5):
        for s in range(3):
            for k in range(4):
                cosine = float(features[b, s] @ centroids[s, k]) / float(features[b, s].norm() * centroids[s, k].norm())
                assert float(values[b, s, k]) == pytest.approx(cosine / 0.1, rel=1e-9)
    assert isinstance(classifier.weight, torch.nn.Parameter) and list(classifier.parameters()) == [classifier.weight]
    logits.sum().backward()
    assert classifier.weight.grad is not None and classifier.weight.grad.abs().sum() > 0
    assert not centroids.requires_grad  # the weights are a copy


def test_identity_classifier_errors():
    with pytest.raises(ValueError, match=r"centroids must be a non-empty \(S, K, D\) array .*got shape \(4, 8\)"):
        IdentityClassifier(torch.randn(4, 8))
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        IdentityClassifier(torch.randn(2, 4, 8), temperature=0)
    with pytest.raises(ValueError, match=r"features must be \(B, 2, 8\) to match the classifier, got shape \(5, 8\)"):
        IdentityClassifier(torch.randn(2, 4, 8))(torch.randn(5, 8))


# ----------------------------------------------------------------------------- AALS (Eq. 13)
def test_aals_matches_naive(batch):
    logits, _, targets, alpha = batch
    loss = agreement_label_smoothing_loss(logits, targets, alpha[:, 0])
    assert float(loss) == pytest.approx(naive_aals(logits, targets, alpha[:, 0]), rel=1e-9)


def test_aals_extremes_and_pplr_form(batch):
    logits, _, targets, alpha = batch
    ones, zeros = torch.ones(6, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    torch.testing.assert_close(agreement_label_smoothing_loss(logits, targets, ones), F.cross_entropy(logits, targets))
    uniform_ce = -F.log_softmax(logits, dim=1).mean(dim=1).mean()
    torch.testing.assert_close(agreement_label_smoothing_loss(logits, targets, zeros), uniform_ce)
    # PPLR's AALS: alpha CE + (1 - alpha) KL(uniform || p) = this loss - (1 - alpha) log K.
    a = alpha[:, 1]
    log_p = F.log_softmax(logits, dim=1)
    pplr = (a * F.cross_entropy(logits, targets, reduction="none")
            + (1 - a) * F.kl_div(log_p, torch.full_like(log_p, 0.2), reduction="none").sum(1)).mean()
    shift = ((1 - a) * math.log(5)).mean()
    torch.testing.assert_close(agreement_label_smoothing_loss(logits, targets, a), pplr + shift)


def test_aals_errors(batch):
    logits, _, targets, alpha = batch
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        agreement_label_smoothing_loss(logits, targets, alpha[:, 0] + 1)
    with pytest.raises(ValueError, match=r"alpha must be \(B,\) = \(6,\) like targets, got shape \(6, 3\)"):
        agreement_label_smoothing_loss(logits, targets, alpha)
    with pytest.raises(ValueError, match=r"targets must be in \[0, 5\), got values from 2 to 5"):
        agreement_label_smoothing_loss(logits, targets + 2, alpha[:, 0])
    with pytest.raises(ValueError, match="targets must be integer class ids"):
        agreement_label_smoothing_loss(logits, targets.double(), alpha[:, 0])


# ----------------------------------------------------------------------------- PGLR (Eq. 14-15)
@pytest.mark.parametrize("beta", [0.35, 0.5])
def test_pglr_matches_naive(batch, beta):
    logits, part_logits, targets, alpha = batch
    loss = part_guided_refinement_loss(logits, part_logits, targets, alpha, beta=beta)
    assert float(loss) == pytest.approx(naive_pglr(logits, part_logits, targets, alpha, beta), rel=1e-9)


def test_pglr_part_logits_get_no_gradient(batch):
    logits, part_logits, targets, alpha = batch
    global_ = logits.clone().requires_grad_(True)
    parts = part_logits.clone().requires_grad_(True)
    part_guided_refinement_loss(global_, parts, targets, alpha).backward()
    assert parts.grad is None
    # The gradient of soft-label cross-entropy is softmax(q) - y^g, with y^g the refined label.
    refined = 0.35 * F.one_hot(targets, 5) + 0.65 * (
        torch.softmax(alpha, 1)[:, :, None] * torch.softmax(part_logits, 2)
    ).sum(1)
    torch.testing.assert_close(global_.grad, (torch.softmax(logits, 1) - refined) / 6)


def test_pglr_beta_one_is_cross_entropy_and_errors(batch):
    logits, part_logits, targets, alpha = batch
    torch.testing.assert_close(
        part_guided_refinement_loss(logits, part_logits, targets, alpha, beta=1.0), F.cross_entropy(logits, targets)
    )
    with pytest.raises(ValueError, match=r"part_logits must be \(6, l, 5\) like global_logits"):
        part_guided_refinement_loss(logits, part_logits[:, :, :4], targets, alpha)
    with pytest.raises(ValueError, match=r"alpha must be \(B, l\) = \(6, 3\), got shape \(6, 2\)"):
        part_guided_refinement_loss(logits, part_logits, targets, alpha[:, :2])
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\], got 1.5"):
        part_guided_refinement_loss(logits, part_logits, targets, alpha, beta=1.5)


# ----------------------------------------------------------------------------- soft triplet
def test_soft_triplet_matches_naive_batch_hard():
    targets = torch.tensor([0, 1, 0, 2, 1, 0, 2, 3])  # class 3 alone: its hardest positive is itself
    features = torch.randn(8, 6, generator=generator(5), dtype=torch.float64)
    loss = soft_triplet_loss(features, targets)
    assert float(loss) == pytest.approx(naive_soft_triplet(features, targets), rel=1e-7)

    f = features.clone().requires_grad_(True)
    soft_triplet_loss(f, targets).backward()
    reference = features.clone().requires_grad_(True)
    dist = torch.cdist(reference, reference)
    same = targets[:, None] == targets[None, :]
    d_ap = torch.stack([dist[i][same[i]].max() for i in range(8)])
    d_an = torch.stack([dist[i][~same[i]].min() for i in range(8)])
    torch.nn.functional.softplus(d_ap - d_an).mean().backward()
    torch.testing.assert_close(f.grad, reference.grad)


def test_soft_triplet_without_negatives_is_zero_and_errors():
    features = torch.randn(4, 3, generator=generator(6), dtype=torch.float64, requires_grad=True)
    loss = soft_triplet_loss(features, torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(features.grad).all()
    with pytest.raises(ValueError, match=r"need features \(B, D\) and targets \(B,\), got shapes \(4, 3\) and \(3,\)"):
        soft_triplet_loss(features, torch.zeros(3, dtype=torch.long))
