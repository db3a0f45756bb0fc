"""reidlab: an interactive workbench for unsupervised person re-identification.

The library is the source of truth; the notebooks in ``notebooks/`` import it and compose its calls. Its
sub-packages follow the flow of the methods:

* :mod:`reidlab.data`: datasets (Market-1501, DukeMTMC-reID, MSMT17, SynthMarket), transforms, sampler;
* :mod:`reidlab.models`: backbones (IBN-a too), the re-ID and part-based models, domain-specific BatchNorm,
  feature extraction;
* :mod:`reidlab.cluster`: neighbours, the k-reciprocal Jaccard distance, DBSCAN pseudo-labels, quality;
* :mod:`reidlab.memory`: the memory banks of SpCL, Cluster Contrast, HHCL, SCWM and CAP;
* :mod:`reidlab.parsing`: SCWM's spatial cascaded clustering of feature maps into parts;
* :mod:`reidlab.training`: the method registry, the shared training loop (domain adaptation and camera-aware
  proxies included), the supervised bound;
* :mod:`reidlab.evaluation`: the Market-1501 protocol;
* :mod:`reidlab.lab`: notebook tooling (recorded metrics, widgets, toys, plots);
* :mod:`reidlab.reproduce`: the papers' experiments and their results table.

The most used names are re-exported here.
"""

__version__ = "0.2.0"

from reidlab.cluster import DBSCANPseudoLabeler, jaccard_distance, knn_search  # noqa: E402
from reidlab.data import Record, load_dataset, prepare_dataset  # noqa: E402
from reidlab.evaluation import evaluate, evaluate_model, evaluate_rank  # noqa: E402
from reidlab.memory import (  # noqa: E402
    CameraProxyMemory,
    ClusterMemory,
    HardHybridMemory,
    HybridMemory,
    Memory,
    WeightedMemory,
)
from reidlab.models import PartReIDModel, ReIDModel, build_model, extract_features  # noqa: E402
from reidlab.training import (  # noqa: E402
    METHODS,
    TrainConfig,
    Trainer,
    build_shared_models,
    build_start_model,
    preset,
    source_pretrained_model,
    supervised_ceiling,
    supervised_model,
)

__all__ = [
    "METHODS",
    "CameraProxyMemory",
    "ClusterMemory",
    "DBSCANPseudoLabeler",
    "HardHybridMemory",
    "HybridMemory",
    "Memory",
    "PartReIDModel",
    "Record",
    "ReIDModel",
    "TrainConfig",
    "Trainer",
    "WeightedMemory",
    "__version__",
    "build_model",
    "build_shared_models",
    "build_start_model",
    "evaluate",
    "evaluate_model",
    "evaluate_rank",
    "extract_features",
    "jaccard_distance",
    "knn_search",
    "load_dataset",
    "preset",
    "prepare_dataset",
    "source_pretrained_model",
    "supervised_ceiling",
    "supervised_model",
]
