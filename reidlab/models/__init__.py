"""Models: backbones and the re-ID embedding model, the part-based model, feature extraction.

:mod:`reidlab.models.reid` holds the backbones (LabNet for the CPU, ResNet-18/34/50), pooling, the BN neck
and :class:`ReIDModel`; :mod:`reidlab.models.parts` the part head and :class:`PartReIDModel` of SCWM and
its PPLR stripe baseline; :mod:`reidlab.models.features` the extraction of features over a record list.
"""

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
    POOLINGS,
    AveragePooling,
    BNNeck,
    GeneralizedMeanPooling,
    LabNet,
    ReIDModel,
    build_model,
)

__all__ = [
    "BACKBONES",
    "PART_SOURCES",
    "POOLINGS",
    "AveragePooling",
    "BNNeck",
    "GeneralizedMeanPooling",
    "LabNet",
    "PartHead",
    "PartOutput",
    "PartReIDModel",
    "ReIDModel",
    "build_model",
    "extract_features",
    "masked_part_features",
    "model_outputs",
    "stripe_features",
]
