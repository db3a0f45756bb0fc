"""Notebook tooling: what the notebooks use beyond the algorithms.

* :mod:`reidlab.lab.notebook`: recorded metrics (:func:`record`, :func:`read_metrics`) and papermill runs;
* :mod:`reidlab.lab.widgets`: the eps explorer and the live training monitor;
* :mod:`reidlab.lab.toy`: 2-D toy memories;
* :mod:`reidlab.lab.embedding`: t-SNE / UMAP plots;
* :mod:`reidlab.lab.viz`: images, masks, parsings and their colours.
"""

from reidlab.lab.notebook import (
    NotebookRun,
    check_injected_parameters,
    read_metrics,
    record,
    run_notebook,
    run_notebooks,
)

__all__ = ["NotebookRun", "check_injected_parameters", "read_metrics", "record", "run_notebook", "run_notebooks"]
