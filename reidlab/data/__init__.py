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
from reidlab.data.loaders import (
    ImageDataset,
    IterLoader,
    build_test_loader,
    build_train_loader,
    read_image,
)
from reidlab.data.prepare import prepare_dataset
from reidlab.data.sampler import PKSampler
from reidlab.data.synthmarket import PART_NAMES, SynthMarketConfig, generate_synthmarket
from reidlab.data.synthmarket import PRESETS as SYNTHMARKET_PRESETS
from reidlab.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RandomErasing,
    build_transforms,
)

__all__ = [
    "DATASETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MSMT17",
    "PART_NAMES",
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
    "prepare_dataset",
    "read_image",
    "relabel",
]
