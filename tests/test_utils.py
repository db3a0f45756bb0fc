import numpy as np
import pytest
import torch

from reidlab.utils import format_duration, resolve_device, seed_everything


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_seed_everything_repeats():
    seed_everything(3)
    a = (np.random.rand(), torch.rand(2))
    seed_everything(3)
    b = (np.random.rand(), torch.rand(2))
    assert a[0] == b[0] and torch.equal(a[1], b[1])


def test_format_duration_gives_seconds_below_a_minute_and_a_half_then_minutes():
    assert [format_duration(s) for s in (16.4, 89.6, 90, 150, 613)] == ["16 s", "90 s", "2 min", "2 min", "10 min"]
