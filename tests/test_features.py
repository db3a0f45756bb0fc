import pytest
import torch

from reidlab.data import build_transforms, read_image
from reidlab.models import build_model
from reidlab.models.features import extract_features


def test_features_are_unit_norm_in_record_order(tiny_synthmarket):
    torch.manual_seed(0)
    model = build_model("labnet", pretrained=False).train()
    records = tiny_synthmarket.query[:10]
    features = extract_features(model, records, height=128, width=64, batch_size=4, progress=False)
    assert features.shape == (10, model.feature_dim) and features.dtype == torch.float32
    assert torch.allclose(features.norm(dim=1), torch.ones(10), atol=1e-5)
    assert model.training  # mode restored
    # Row 7 is the embedding of record 7 alone, in eval mode.
    image = build_transforms(128, 64, train=False)(read_image(records[7].path))
    with torch.no_grad():
        alone = model.eval()(image[None])[0]
    assert torch.allclose(features[7], alone, atol=1e-5)


def test_empty_records_are_an_error():
    with pytest.raises(ValueError, match="record list is empty"):
        extract_features(build_model("labnet", pretrained=False), [], height=128, width=64, progress=False)
