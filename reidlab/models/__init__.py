"""Models: backbones and the re-ID embedding model, the part-based model, feature extraction.

:mod:`reidlab.models.reid` holds the backbones (LabNet for the CPU, ResNet-18/34/50, their IBN-a variants),
pooling, the BN neck and :class:`ReIDModel`; :mod:`reidlab.models.domains` domain-specific BatchNorm (DSBN)
for domain adaptation; :mod:`reidlab.models.parts` the part head and :class:`PartReIDModel` of SCWM and its
PPLR stripe baseline; :mod:`reidlab.models.features` the extraction of features over a record list.
"""

from reidlab.models.domains import (
    DOMAINS,
    DomainBatchNorm,
    convert_domain_batchnorm,
    domain_model,
    domain_split,
    has_domain_batchnorm,
)
from reidlab.models.features import extract_features, model_outputs
from reidlab.models.parts import (
    PART_SOURCES,
    PartHead,
    PartOutput,
    PartReIDModel,
    masked_part_features,
    stripe_features,
)
from reidlab.models.reid import (
    BACKBONES,
    IBN,
    IBN_SUFFIX,
    PLAIN_BACKBONES,
    POOLINGS,
    AveragePooling,
    BNNeck,
    GeneralizedMeanPooling,
    LabNet,
    ReIDModel,
    build_model,
    has_ibn,
    ibn_backbone,
)

__all__ = [
    "BACKBONES",
    "DOMAINS",
    "IBN",
    "IBN_SUFFIX",
    "PART_SOURCES",
    "PLAIN_BACKBONES",
    "POOLINGS",
    "AveragePooling",
    "BNNeck",
    "DomainBatchNorm",
    "GeneralizedMeanPooling",
    "LabNet",
    "PartHead",
    "PartOutput",
    "PartReIDModel",
    "ReIDModel",
    "build_model",
    "convert_domain_batchnorm",
    "domain_model",
    "domain_split",
    "extract_features",
    "has_domain_batchnorm",
    "has_ibn",
    "ibn_backbone",
    "masked_part_features",
    "model_outputs",
    "stripe_features",
]
