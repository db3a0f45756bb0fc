"""Data layer: dataset loaders, the SynthMarket generator, transforms, the P x K sampler and loaders."""

from reidlab.data.datasets import (
    DATASETS,
    MSMT17,
    DukeMTMCreID,
    Market1501,
    Record,
    ReIDDataset,
    SynthMarket,
    load_dataset,
    relabel,
)
from reidlab.data.loaders import IterLoader, ImageDataset, build_test_loader, build_train_loader, read_image
from reidlab.data.sampler import PKSampler
from reidlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD, RandomErasing, build_transforms

# The generator is imported on first use, so that `python -m reidlab.data.synthmarket` does not find its
# own module already imported by this package.
_SYNTHMARKET_NAMES = {"generate_synthmarket": "generate_synthmarket", "SynthMarketConfig": "SynthMarketConfig",
                      "SYNTHMARKET_PRESETS": "PRESETS"}


def __getattr__(name: str):
    if name in _SYNTHMARKET_NAMES:
        from reidlab.data import synthmarket

        return getattr(synthmarket, _SYNTHMARKET_NAMES[name])
    raise AttributeError(f"module 'reidlab.data' has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MSMT17",
    "SYNTHMARKET_PRESETS",
    "DukeMTMCreID",
    "ImageDataset",
    "IterLoader",
    "Market1501",
    "PKSampler",
    "RandomErasing",
    "Record",
    "ReIDDataset",
    "SynthMarket",
    "SynthMarketConfig",
    "build_test_loader",
    "build_train_loader",
    "build_transforms",
    "generate_synthmarket",
    "load_dataset",
    "read_image",
    "relabel",
]
