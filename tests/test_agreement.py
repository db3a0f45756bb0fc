"""kNN cross-agreement (SCWM Eq. 7, PPLR's cross-agreement): parity with a brute-force IoU, invariants, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reidlab.cluster.agreement import global_agreement, knn_agreement


def unit(*shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=generator), dim=-1)


def naive_neighbours(features, i, k):
    """The k rows most similar to row i by cosine, row i itself left out."""
    x = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarities = [(float(x[i] @ x[j]), j) for j in range(len(x)) if j != i]
    return {j for _, j in sorted(similarities, reverse=True)[:k]}


def naive_agreement(global_features, part_features, k):
    n, num_parts, _ = part_features.shape
    alpha = np.zeros((n, num_parts))
    for i in range(n):
        own = naive_neighbours(global_features, i, k)
        for p in range(num_parts):
            other = naive_neighbours(part_features[:, p], i, k)
            alpha[i, p] = len(own & other) / len(own | other)
    return alpha


def clustered(n=40, num_parts=3, dim=6, seed=0):
    """Global and part features that share some neighbourhood structure (so the IoUs vary)."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(5, dim, generator=generator)
    base = centres[torch.arange(n) % 5] + 0.6 * torch.randn(n, dim, generator=generator)
    parts = base[:, None] + torch.randn(n, num_parts, dim, generator=generator) * torch.tensor([0.3, 1.0, 3.0])[:, None]
    return base, parts


@pytest.mark.parametrize("k", [1, 4, 10])
def test_matches_brute_force_iou(k):
    global_features, part_features = clustered()
    alpha = knn_agreement(global_features, part_features, k=k)
    expected = naive_agreement(global_features.numpy(), part_features.numpy(), k)
    assert isinstance(alpha, torch.Tensor) and alpha.dtype == torch.float32 and alpha.shape == (40, 3)
    np.testing.assert_allclose(alpha.numpy(), expected, rtol=1e-6)
    assert len(np.unique(expected)) > (1 if k == 1 else 3)  # the case is not degenerate
    assert expected[:, 0].mean() > expected[:, 2].mean()  # the less noisy part agrees more


def test_numpy_in_numpy_out_and_scale_invariant():
    global_features, part_features = clustered(seed=1)
    from_torch = knn_agreement(global_features, part_features, k=5)
    from_numpy = knn_agreement(global_features.numpy() * 3.0, part_features.numpy() * 0.5, k=5)
    assert isinstance(from_numpy, np.ndarray) and from_numpy.dtype == np.float32
    np.testing.assert_array_equal(from_numpy, from_torch.numpy())  # rows are L2-normalised first


def test_identical_part_agrees_fully_and_k_all_others_is_one():
    global_features = unit(12, 5, seed=2)
    parts = torch.stack([global_features, unit(12, 5, seed=3)], dim=1)
    alpha = knn_agreement(global_features, parts, k=3)
    assert torch.equal(alpha[:, 0], torch.ones(12))
    assert float(alpha[:, 1].max()) <= 1.0 and float(alpha[:, 1].min()) >= 0.0
    # The sample itself is never in its set: with k = N - 1 both sets are "everyone else".
    assert torch.equal(knn_agreement(global_features, parts, k=11), torch.ones(12, 2))


def test_global_agreement_is_part_mean():
    alpha = torch.tensor([[0.2, 0.4, 0.9], [1.0, 0.0, 0.5]])
    torch.testing.assert_close(global_agreement(alpha), torch.tensor([0.5, 0.5]))
    np.testing.assert_allclose(global_agreement(alpha.numpy()), [0.5, 0.5])
    with pytest.raises(ValueError, match=r"alpha must be \(N, l\), got shape \(3,\)"):
        global_agreement(torch.ones(3))


def test_errors():
    global_features, part_features = unit(6, 4), unit(6, 2, 4, seed=1)
    with pytest.raises(ValueError, match=r"k must be an integer between 1 and N - 1 = 5 .*got 6"):
        knn_agreement(global_features, part_features, k=6)
    with pytest.raises(ValueError, match="got 0"):
        knn_agreement(global_features, part_features, k=0)
    with pytest.raises(ValueError, match=r"same N and D, got shapes \(6, 4\) and \(5, 2, 4\)"):
        knn_agreement(global_features, part_features[:5], k=2)
    with pytest.raises(ValueError, match=r"got shapes \(6, 4\) and \(6, 4\)"):
        knn_agreement(global_features, global_features, k=2)
