"""reidlab: an interactive workbench for unsupervised person re-identification.

The library is the source of truth; the notebooks in ``notebooks/`` import it and compose its calls.
Sub-packages: :mod:`reidlab.data` (datasets, SynthMarket, sampler, loaders), :mod:`reidlab.models`,
:mod:`reidlab.features`, :mod:`reidlab.evaluation`, :mod:`reidlab.supervised`, :mod:`reidlab.viz`,
:mod:`reidlab.notebook`.
"""

from reidlab.data import Record, load_dataset
from reidlab.evaluation import evaluate, evaluate_rank, pairwise_distance
from reidlab.features import extract_features
from reidlab.models import ReIDModel, build_model
from reidlab.notebook import record

__version__ = "0.1.0"

__all__ = [
    "Record",
    "ReIDModel",
    "__version__",
    "build_model",
    "evaluate",
    "evaluate_rank",
    "extract_features",
    "load_dataset",
    "pairwise_distance",
    "record",
]
