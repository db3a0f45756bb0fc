"""Named reproductions of the papers' tables, run by executing ``notebooks/train_one_run.ipynb``.

An :class:`Experiment` is a list of :class:`Run`\\ s (method, dataset, config overrides), each tied to the
papers' table row it reproduces (:mod:`reidlab.reproduce.paper_results`). :meth:`Experiment.plan` expands it for a
scale: at ``full`` scale every run trains on its real dataset (the papers' settings, a GPU); at ``lab``
and ``tiny`` scale the Market-1501 runs train on SynthMarket with LabNet, reidlab's CPU stand-in, and
are compared with the papers' Market-1501 numbers.

Each planned run lives in ``<results>/<experiment>/<scale>/<label>/``: ``config.json`` (written before
it starts), ``notebook.ipynb`` (the executed notebook), ``train/`` (the trainer's ``checkpoint.pt`` and
``history.json``) and ``metrics.json``, written last and atomically. A run whose ``metrics.json`` exists is
done and skipped; a run with a checkpoint is resumed by executing the notebook again
(``Trainer.fit(resume=True)`` continues after its last finished epoch). :func:`write_table` then puts
every finished run next to the papers' numbers (Markdown, HTML and a bar plot).

The ``reidlab reproduce`` command (:mod:`reidlab.cli`) drives this module::

    reidlab reproduce --list
    reidlab reproduce hhcl_mu --scale lab --dry-run
    reidlab reproduce main --scale full --data-root /datasets
"""

from reidlab.reproduce import paper_results
from reidlab.reproduce.experiments import (
    EXPERIMENTS,
    PAPER_DATASETS,
    Experiment,
    PlannedRun,
    Run,
    RunOutcome,
    check_datasets,
    collect_results,
    format_experiments,
    format_plan,
    plan_experiments,
    run_experiments,
    run_status,
    write_table,
)

__all__ = [
    "EXPERIMENTS",
    "PAPER_DATASETS",
    "Experiment",
    "PlannedRun",
    "Run",
    "RunOutcome",
    "check_datasets",
    "collect_results",
    "format_experiments",
    "format_plan",
    "paper_results",
    "plan_experiments",
    "run_experiments",
    "run_status",
    "write_table",
]
