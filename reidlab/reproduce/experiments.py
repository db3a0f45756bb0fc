"""The experiments of :mod:`reidlab.reproduce`: runs, plans, execution, skip/resume, the results table."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reidlab.config import (
    SCALES,
    check_scale,
    default_synthmarket_root,
    synthmarket_preset,
)
from reidlab.lab.notebook import NOTEBOOK_DIR, NotebookRun
from reidlab.reproduce.paper_results import (
    SCWM_UPDATE_NAMES,
    PaperResult,
    find_paper_result,
)
from reidlab.training.start import LAB_START_SEED

logger = logging.getLogger(__name__)

__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "PlannedRun",
    "Run",
    "RunOutcome",
    "check_datasets",
    "collect_results",
    "dataset_problem",
    "format_experiments",
    "format_plan",
    "plan_experiments",
    "run_experiments",
    "run_status",
    "write_table",
]

TRAIN_NOTEBOOK = NOTEBOOK_DIR / "train_one_run.ipynb"
PAPER_DATASETS = ("market1501", "dukemtmcreid", "msmt17")
LAB_DATASET = "synthmarket"  # what lab and tiny scale train on ...
LAB_REFERENCE = "market1501"  # ... standing in for this paper dataset (same layout, naming and 6 cameras)
DATASET_NAMES = {"market1501": "Market-1501", "dukemtmcreid": "DukeMTMC-reID", "msmt17": "MSMT17",
                 "synthmarket": "SynthMarket"}
BACKBONE_NAMES = {"labnet": "LabNet", "resnet18": "ResNet-18", "resnet34": "ResNet-34", "resnet50": "ResNet-50"}
# What a run records into metrics.json from the executed notebook.
METRIC_KEYS = ("mAP", "rank1", "rank5", "rank10", "mINP", "n_clusters", "epochs", "seconds")
# The settings a resumed or skipped run must share with the current invocation.
IDENTITY_KEYS = ("experiment", "run", "method", "dataset", "paper_dataset", "scale", "seed", "overrides", "config")


# ----------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class Run:
    """One run of an experiment: a method with config overrides on one of the papers' datasets.

    Attributes:
        method: a :data:`reidlab.training.METHODS` name.
        dataset: the paper dataset it reproduces (``"market1501"``, ``"dukemtmcreid"``, ``"msmt17"``).
        label: the variant's name, unique per dataset within the experiment (``"mu0.25"``).
        overrides: :class:`reidlab.training.TrainConfig` fields changed from the method's preset.
        paper_settings: the :class:`reidlab.reproduce.paper_results.PaperResult` settings to compare with, preferred
            first (``""`` = the method's main result).
    """

    method: str
    dataset: str
    label: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    paper_settings: tuple[str, ...] = ("",)


@dataclass(frozen=True)
class PlannedRun:
    """A :class:`Run` expanded for one scale: what is trained, on which data, compared with what.

    Attributes:
        experiment: the experiment's name.
        label: ``"<variant>-<dataset trained on>"``, e.g. ``"mu0.25-synthmarket"``; the run's folder name.
        method: the engine method.
        dataset: the dataset trained on (SynthMarket at lab and tiny scale).
        paper_dataset: the paper dataset whose numbers it is compared with.
        scale: ``"tiny"``, ``"lab"`` or ``"full"``.
        overrides: config overrides.
        paper_settings: see :class:`Run`.
        index: position in the experiment, for ordering the results table.
    """

    experiment: str
    label: str
    method: str
    dataset: str
    paper_dataset: str
    scale: str
    overrides: Mapping[str, Any]
    paper_settings: tuple[str, ...]
    index: int

    def folder(self, results: str | Path) -> Path:
        """``<results>/<experiment>/<scale>/<label>``."""
        return Path(results) / self.experiment / self.scale / self.label

    def source_dataset(self) -> str:
        """The labelled source dataset of a domain-adaptation run (``""``: none), from its config."""
        from reidlab.training import preset

        return preset(self.method, scale=self.scale, dataset=self.dataset, **self.overrides).source_dataset

    def datasets_needed(self) -> tuple[str, ...]:
        """The datasets the run reads from ``--data-root``: the one it trains on and, for domain adaptation at
        full scale, its source (lab and tiny scale generate theirs)."""
        from reidlab.training.domains import is_lab_source

        source = self.source_dataset()
        return (self.dataset,) + ((source,) if source and not is_lab_source(source) else ())

    def identity(self, seed: int) -> dict[str, Any]:
        """The settings that define the run, as JSON values, with the full config from :func:`preset`.

        Raises:
            ValueError: the method, dataset or an override's value is not valid for
                :func:`reidlab.training.preset` (TypeError: an override that is no TrainConfig field).
        """
        from reidlab.training import preset

        config = preset(self.method, scale=self.scale, dataset=self.dataset, **self.overrides)
        identity = {
            "experiment": self.experiment, "run": self.label, "method": self.method, "dataset": self.dataset,
            "paper_dataset": self.paper_dataset, "scale": self.scale, "seed": seed,
            "overrides": dict(self.overrides), "config": asdict(config),
        }
        return json.loads(json.dumps(identity))  # tuples become lists, as they read back from JSON


@dataclass(frozen=True)
class Experiment:
    """A named set of runs reproducing one of the papers' tables.

    Attributes:
        name: what ``reidlab reproduce NAME`` calls it.
        description: one line.
        reference: the paper table(s) it reproduces.
        runs: the runs, each on one paper dataset.
    """

    name: str
    description: str
    reference: str
    runs: tuple[Run, ...]

    def __post_init__(self) -> None:
        keys = [(run.dataset, run.label) for run in self.runs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"experiment {self.name!r} repeats a (dataset, label) pair: {keys}")

    @property
    def datasets(self) -> tuple[str, ...]:
        """The paper datasets of its runs, in order."""
        return tuple(dict.fromkeys(run.dataset for run in self.runs))

    def plan(self, scale: str, datasets: Sequence[str] | None = None) -> list[PlannedRun]:
        """The runs at ``scale``, restricted to the paper ``datasets`` (default: all at full scale).

        At ``lab`` and ``tiny`` scale the runs of :data:`LAB_REFERENCE` (Market-1501) train on SynthMarket;
        ``datasets`` may then only name Market-1501 or SynthMarket.

        Raises:
            ValueError: an unknown scale or dataset, or a dataset the experiment has no run on.
        """
        check_scale(scale)
        lab = scale != "full"
        chosen = _check_dataset_names(datasets, lab=lab)
        if lab:
            chosen = (LAB_REFERENCE,)
        elif chosen is None:
            chosen = self.datasets
        missing = [name for name in chosen if name not in self.datasets]
        if missing:
            raise ValueError(
                f"experiment {self.name!r} has no runs on {', '.join(missing)}; its datasets are "
                f"{', '.join(self.datasets)}"
            )
        planned = []
        for index, run in enumerate(self.runs):
            if run.dataset not in chosen:
                continue
            dataset = LAB_DATASET if lab else run.dataset
            planned.append(PlannedRun(self.name, f"{run.label}-{dataset}", run.method, dataset, run.dataset, scale,
                                      dict(run.overrides), run.paper_settings, index))
        return planned


def _check_dataset_names(datasets: Sequence[str] | None, *, lab: bool) -> tuple[str, ...] | None:
    if datasets is None:
        return None
    names = tuple(dict.fromkeys(datasets))
    valid = (LAB_REFERENCE, LAB_DATASET) if lab else PAPER_DATASETS
    wrong = [name for name in names if name not in valid]
    if wrong and lab:
        raise ValueError(
            f"at lab and tiny scale every run trains on SynthMarket and is compared with the papers' "
            f"Market-1501 numbers, so --dataset can only be market1501 or synthmarket, got {', '.join(wrong)}; "
            f"the real datasets ({', '.join(PAPER_DATASETS)}) are trained on at --scale full"
        )
    if wrong:
        raise ValueError(f"datasets must be among {', '.join(PAPER_DATASETS)}, got {', '.join(wrong)}")
    return names


# Cluster Contrast's full-scale preset pools with GeM (docs/methods.md, section 4.2): its GeM numbers first,
# else average pooling.
CC_PAPER_SETTINGS = ("GeM pooling", "average pooling")


def _main_runs() -> tuple[Run, ...]:
    runs = []
    for dataset in PAPER_DATASETS:
        for method in ("spcl", "cluster_contrast", "hhcl", "scwm"):
            if method == "scwm" and dataset == "dukemtmcreid":
                continue  # SCWM reports Market-1501 and MSMT17 only (SCWM section 4.1)
            settings = CC_PAPER_SETTINGS if method == "cluster_contrast" else ("",)
            runs.append(Run(method, dataset, method, paper_settings=settings))
    return tuple(runs)


SCWM_DATASETS = ("market1501", "msmt17")
# The Cluster Contrast appendix's Table 1 reports Market-1501 and MSMT17; its domain-adaptation rows adapt
# MSMT17 -> Market-1501 and Market-1501 -> MSMT17, the sources of the UDA methods' presets.
CC_APPENDIX_DATASETS = ("market1501", "msmt17")
UDA_SETTINGS = {"market1501": "from MSMT17", "msmt17": "from Market-1501"}


def _cc_appendix_runs() -> tuple[Run, ...]:
    """Cluster Contrast appendix Table 1, row by row: purely unsupervised (average / GeM pooling), domain
    adaptation (SpCL, SpCL + Cluster Contrast), camera-aware (CAP, CAP + Cluster Contrast); ICE is a reference
    row of the table, not a reidlab method."""
    runs = []
    for dataset in CC_APPENDIX_DATASETS:
        uda = (UDA_SETTINGS[dataset],)
        runs += [
            Run("cluster_contrast", dataset, "cc_avg", {"pooling": "avg"}, ("average pooling",)),
            Run("cluster_contrast", dataset, "cc_gem", {"pooling": "gem"}, ("GeM pooling",)),
            Run("spcl_uda", dataset, "spcl_uda", paper_settings=uda),
            Run("cluster_contrast_uda", dataset, "spcl_cc_uda", paper_settings=uda),
            Run("cap", dataset, "cap"),
            Run("cap_cluster_contrast", dataset, "cap_cc"),
        ]
    return tuple(runs)


# HHCL Table 3: HHCL with an IBN-ResNet50 backbone, GeM pooling and label smoothing (HHCL's code: epsilon 0.1
# over the top-scoring classes, CrossEntropyLabelSmooth(topk_smoothing=True)).
HHCL_LS = {"label_smoothing": 0.1, "label_smoothing_topk": True}

EXPERIMENTS: dict[str, Experiment] = {
    experiment.name: experiment
    for experiment in (
        Experiment(
            "main",
            "SpCL, Cluster Contrast, HHCL and SCWM on Market-1501, DukeMTMC-reID and MSMT17",
            "HHCL Table 1, Cluster Contrast appendix Table 1, SCWM Table 4",
            _main_runs(),
        ),
        Experiment(
            "hhcl_mu",
            "HHCL's balance mu between the cluster and hard-instance losses (Eq. 2): 0, 0.25, 0.5, 0.75, 1",
            "HHCL Table 2 (Market-1501)",
            tuple(Run("hhcl", "market1501", f"mu{mu:g}", {"mu": mu}, (f"mu={mu:g}",))
                  for mu in (0.0, 0.25, 0.5, 0.75, 1.0)),
        ),
        Experiment(
            "scwm_parsing",
            "SCWM's cascaded clustering without / with foreground and space correction",
            "SCWM Table 2",
            tuple(
                Run("scwm", dataset, label, {"foreground_correction": fg, "space_correction": space}, (setting,))
                for dataset in SCWM_DATASETS
                for label, fg, space, setting in (
                    ("none", False, False, "no correction"),
                    ("foreground", True, False, "foreground correction"),
                    ("space", False, True, "space correction"),
                    ("both", True, True, "both corrections"),
                )
            ),
        ),
        Experiment(
            "scwm_update",
            "SCWM's memory update: mean, hard or weighted (Eq. 9; the paper's average, hardest, weighted)",
            "SCWM Table 3",
            tuple(Run("scwm", dataset, update, {"memory_update": update}, (f"{paper} update",))
                  for dataset in SCWM_DATASETS
                  for update, paper in SCWM_UPDATE_NAMES.items()),
        ),
        Experiment(
            "scwm_components",
            "SCWM's components: the PPLR stripe baseline, SCWM without the diversity loss, full SCWM",
            "SCWM Table 1 (rows baseline, +L_WM + L_parsing, +L_WM + L_SCC)",
            tuple(
                run
                for dataset in SCWM_DATASETS
                for run in (
                    Run("pplr_stripes", dataset, "baseline"),
                    Run("scwm", dataset, "no_diversity", {"losses": ["parsing", "wnce", "sep", "id"]},
                        ("+L_WM + L_parsing",)),
                    Run("scwm", dataset, "scwm", paper_settings=("+L_WM + L_SCC",)),
                )
            ),
        ),
        Experiment(
            "cc_update",
            "Cluster Contrast's memory update: mean (every batch sample) vs hard (the hardest positive)",
            "Cluster Contrast appendix Table 1 (mean update only; the hard update is not reported)",
            tuple(
                run
                for dataset in ("market1501", "msmt17")
                for run in (Run("cluster_contrast", dataset, "mean", paper_settings=CC_PAPER_SETTINGS),
                            Run("cluster_contrast_hard", dataset, "hard", paper_settings=("hard update",)))
            ),
        ),
        Experiment(
            "cc_appendix",
            "Cluster Contrast with GeM pooling, with SpCL's domain adaptation and with CAP's camera-aware proxies",
            "Cluster Contrast appendix Table 1 (ICE is a reference row only)",
            _cc_appendix_runs(),
        ),
        Experiment(
            "hhcl_tricks",
            "HHCL with an IBN-a backbone and GeM pooling, then with label smoothing as well",
            "HHCL Table 3",
            tuple(
                run
                for dataset in ("market1501", "dukemtmcreid")
                for run in (
                    Run("hhcl", dataset, "baseline", paper_settings=("ResNet50",)),
                    Run("hhcl", dataset, "ibn_gem", {"ibn": True, "pooling": "gem"}, ("IBN + GeM",)),
                    Run("hhcl", dataset, "ibn_gem_ls", {"ibn": True, "pooling": "gem", **HHCL_LS},
                        ("IBN + GeM + LS",)),
                )
            ),
        ),
    )
}


def plan_experiments(names: Sequence[str], *, scale: str, datasets: Sequence[str] | None = None) -> list[PlannedRun]:
    """The runs of the experiments ``names`` (``"all"`` for every one) at ``scale``.

    With several experiments, ``datasets`` picks among each one's datasets, and an experiment with none
    of them is left out (``all --dataset msmt17`` leaves out HHCL's Market-1501 mu sweep).

    Raises:
        ValueError: an unknown experiment name, scale or dataset, or no run left.
    """
    if not names:
        raise ValueError(f"name at least one experiment: {', '.join(EXPERIMENTS)} (or 'all')")
    if "all" in names:
        names = list(EXPERIMENTS)
    unknown = [name for name in names if name not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment {', '.join(map(repr, unknown))}; valid: {', '.join(EXPERIMENTS)}, all")
    names = list(dict.fromkeys(names))
    check_scale(scale)
    datasets = _check_dataset_names(datasets, lab=scale != "full")
    planned: list[PlannedRun] = []
    for name in names:
        experiment = EXPERIMENTS[name]
        wanted = datasets
        if datasets is not None and len(names) > 1 and scale == "full":
            wanted = [dataset for dataset in datasets if dataset in experiment.datasets]
            if not wanted:
                continue
        planned += experiment.plan(scale, wanted)
    if not planned:
        raise ValueError(f"none of {', '.join(names)} has runs on {', '.join(datasets or ())}")
    return planned


# ----------------------------------------------------------------------------- datasets
def _layout_text(name: str) -> str:
    """The published folder(s) of dataset ``name`` with what each must hold."""
    from reidlab.data.datasets import DATASETS

    return " or ".join(f"{published}/ (holding {', '.join(required)})"
                       for published, required in DATASETS[name].layouts.items())


def current_data(name: str, data_root: str | Path | None, *, scale: str) -> dict[str, str] | None:
    """The identity (name, root, fingerprint) of the data a run of ``name`` would train on now, or None when
    it is not there yet (SynthMarket, generated on first use) or cannot be loaded (:func:`dataset_problem`
    says why)."""
    from reidlab.data import load_dataset

    root = data_root if data_root is not None else (default_synthmarket_root(scale) if name == LAB_DATASET else None)
    if root is None:
        return None
    try:
        return load_dataset(name, root).identity()
    except (FileNotFoundError, ValueError, RuntimeError):
        return None


def dataset_problem(name: str, root: str | Path | None, *, scale: str) -> str | None:
    """Why dataset ``name`` cannot be loaded from ``root``, saying where to put it; None when it loads.

    At lab and tiny scale a missing SynthMarket root is no problem: the notebook generates it.
    """
    from reidlab.data import load_dataset

    if name == LAB_DATASET:
        if root is None:
            return None
        try:
            load_dataset(name, root)
        except FileNotFoundError:
            return (f"SynthMarket not found under {root}: omit --data-root to generate it in "
                    f"{default_synthmarket_root(scale)}, or generate it at {root} with `python -m "
                    f"reidlab.data.synthmarket --root {root} --preset {synthmarket_preset(scale)}`")
        except RuntimeError as err:  # an interrupted generation; the message says how to regenerate
            return str(err)
        return None
    title = DATASET_NAMES[name]
    if root is None:
        return (f"{title} is needed at full scale: pass --data-root DIR, the folder that holds "
                f"{_layout_text(name)}")
    try:
        load_dataset(name, root)
    except FileNotFoundError:
        return (f"{title} not found under {root}: put its folder {_layout_text(name)} into {root}/, or pass "
                f"--data-root the folder that holds it")
    return None


def check_datasets(runs: Iterable[PlannedRun], data_root: str | Path | None) -> None:
    """Raise a ``FileNotFoundError`` saying where to put each dataset of ``runs`` that is missing."""
    needed = list(dict.fromkeys((name, run.scale) for run in runs for name in run.datasets_needed()))
    real = [name for name, _ in needed if name != LAB_DATASET]
    if real and data_root is None:
        raise FileNotFoundError(
            "full scale trains on the real datasets, which reidlab cannot download: pass --data-root DIR, the "
            "folder that holds " + "; ".join(_layout_text(name) for name in real)
        )
    problems = [problem for name, scale in needed
                if (problem := dataset_problem(name, data_root, scale=scale)) is not None]
    if problems:
        raise FileNotFoundError("\n".join(problems))


# ----------------------------------------------------------------------------- running
def run_status(folder: str | Path) -> tuple[str, int]:
    """``("done", epochs)``, ``("partial", epochs finished)`` or ``("new", 0)`` for a run folder.

    Done = ``metrics.json`` exists; partial = the trainer left a checkpoint in ``train/``.
    """
    folder = Path(folder)
    if (folder / "metrics.json").is_file():
        return "done", int(_read_json(folder / "metrics.json", what="run metrics").get("epochs", 0))
    if (folder / "train" / "checkpoint.pt").is_file():
        history = folder / "train" / "history.json"
        return "partial", len(_read_json(history, what="training history")) if history.is_file() else 0
    return "new", 0


@dataclass
class RunOutcome:
    """What happened to one planned run: ``status`` is ``"skipped"``, ``"ran"``, ``"resumed"`` or ``"failed"``."""

    run: PlannedRun
    folder: Path
    status: str
    metrics: dict[str, Any] | None = None
    error: str | None = None


Runner = Callable[..., NotebookRun]


def run_experiments(
    runs: Sequence[PlannedRun],
    *,
    results: str | Path = "results",
    data_root: str | Path | None = None,
    seed: int = 0,
    runner: Runner | None = None,
    progress: bool = True,
    report: Callable[[str], None] | None = None,
) -> list[RunOutcome]:
    """Execute the training notebook for every run that is not done, resuming partial ones.

    Every run's settings are checked first (a bad override fails before anything trains), and a run
    folder written with other settings (another seed, other overrides) is refused rather than mixed; a
    done run whose config values changed since (reidlab's defaults) stays done, with a note.
    A run whose notebook raises is reported as failed and the others go on.

    Args:
        runs: from :func:`plan_experiments`.
        results: the results folder.
        data_root: the datasets' folder (full scale) or the SynthMarket folder (None: generated).
        seed: the training seed of every run.
        runner: executes a notebook, with :func:`reidlab.lab.notebook.run_notebook`'s signature (the default).
        progress: show papermill's progress bar.
        report: called with one line per run ("skipped (done)", "resuming", "running", the result);
            default: the module's logger.

    Raises:
        ValueError: a run's settings are invalid, or its folder holds a run with other settings.
    """
    from papermill.exceptions import PapermillExecutionError

    from reidlab.lab.notebook import run_notebook
    from reidlab.utils import write_atomically

    runner = runner or run_notebook
    report = report or logger.info
    identities = [run.identity(seed) for run in runs]
    data = {key: current_data(key[0], data_root, scale=key[1]) for key in {(run.dataset, run.scale) for run in runs}}
    notes = [_check_same_settings(run.folder(results), identity, data[run.dataset, run.scale])
             for run, identity in zip(runs, identities)]
    root = str(Path(data_root).expanduser().resolve()) if data_root is not None else None
    outcomes = []
    for number, (run, identity, note) in enumerate(zip(runs, identities, notes), start=1):
        folder = run.folder(results).resolve()
        name = f"[{number}/{len(runs)}] {run.experiment}/{run.scale}/{run.label}"
        status, epochs = run_status(folder)
        if status == "done":
            report(f"{name}: skipped (done)" + (f"; {note}" if note else ""))
            outcomes.append(RunOutcome(run, folder, "skipped", _read_json(folder / "metrics.json")))
            continue
        total = identity["config"]["epochs"]
        report(f"{name}: resuming after epoch {epochs} of {total}" if status == "partial"
               else f"{name}: running ({run.method}, {total} epochs)")
        folder.mkdir(parents=True, exist_ok=True)
        config = {**identity, "data_root": root, "data": data[run.dataset, run.scale], "notebook": str(TRAIN_NOTEBOOK)}
        write_atomically(folder / "config.json", lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))
        parameters = {"method": run.method, "dataset": run.dataset, "data_root": root, "scale": run.scale,
                      "seed": seed, "overrides": json.dumps(identity["overrides"]), "run_dir": str(folder / "train")}
        try:
            executed = runner(TRAIN_NOTEBOOK, folder / "notebook.ipynb", parameters, progress=progress)
            metrics = _run_metrics(run, identity, executed)
        except (PapermillExecutionError, RuntimeError) as err:
            message = f"{err.ename}: {err.evalue}" if isinstance(err, PapermillExecutionError) else str(err)
            report(f"{name}: failed ({message}); see {folder / 'notebook.ipynb'}")
            outcomes.append(RunOutcome(run, folder, "failed", error=message))
            continue
        write_atomically(folder / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2) + "\n"))
        report(f"{name}: done, mAP {100 * metrics['mAP']:.1f}%, Rank-1 {100 * metrics['rank1']:.1f}% "
               f"({executed.seconds:.0f} s)")
        outcomes.append(RunOutcome(run, folder, "resumed" if status == "partial" else "ran", metrics))
    return outcomes


def _read_json(path: Path, *, what: str = "JSON file") -> Any:
    """``path``'s JSON; a truncated or corrupt file raises a ValueError naming it and what to do."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{path} is not a readable {what} ({error}): it may be truncated; delete its run folder "
                         f"({path.parent}) to run that run again") from error


def _check_same_settings(folder: Path, identity: dict[str, Any], data: dict[str, str] | None = None) -> str:
    """Compare a run folder's config.json (and, for a done run, metrics.json) with this invocation.

    Returns ``""`` when they agree (or the folder is new), and a note naming the changed config fields
    when a done run was made with other config values (reidlab's defaults changed since): it stays done.

    Raises:
        ValueError: other run settings (seed, overrides...); other config values for a run that is not
            done (its checkpoint could not be resumed); or other data (dataset name or file list) than
            ``data``, the identity of the data this invocation would use, so that no results are mixed.
    """
    path = folder / "config.json"
    if not path.is_file():
        return ""
    previous = _read_json(path, what="run settings")
    status = run_status(folder)[0]
    changed = [f"{key}: {_short(previous.get(key))} -> {_short(identity[key])}"
               for key in IDENTITY_KEYS if key != "config" and previous.get(key) != identity[key]]
    old, new = previous.get("config", {}), identity["config"]
    fields = [f"{key} {_short(old.get(key))} -> {_short(new.get(key))}"
              for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    trained_on = _read_json(folder / "metrics.json", what="run metrics").get("data") if status == "done" \
        else previous.get("data")
    if data is not None and trained_on is not None:
        changed += [f"data {key}: {trained_on.get(key)} ({trained_on.get('root')}) -> {data[key]} ({data['root']})"
                    for key in ("name", "fingerprint") if trained_on.get(key) != data[key]]
    elif data is not None and status == "done":
        changed.append(f"data: not recorded -> {data['name']} {data['fingerprint']} ({data['root']})")
    if changed or (fields and status != "done"):
        details = "; ".join(changed + ([f"config: {', '.join(fields)}"] if fields else []))
        raise ValueError(
            f"{folder} holds a run made with other settings or data ({details}): pass another --results folder, "
            f"or delete that folder to start the run again"
        )
    return f"made with an earlier config: {', '.join(fields)}; delete the folder to run it again" if fields else ""


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _run_metrics(run: PlannedRun, identity: dict[str, Any], executed: NotebookRun) -> dict[str, Any]:
    """metrics.json's content: the run's identity (without the config) and the notebook's final metrics."""
    recorded = executed.metrics
    missing = [key for key in (*METRIC_KEYS, "config") if key not in recorded]
    if missing:
        raise RuntimeError(f"{executed.output} recorded no {', '.join(missing)}: was it executed to the end?")
    if recorded["config"] != identity["config"]:
        fields = sorted(k for k in identity["config"] if recorded["config"].get(k) != identity["config"][k])
        raise RuntimeError(f"{executed.output} trained with another config than config.json (fields {fields})")
    return {
        **{key: identity[key] for key in IDENTITY_KEYS if key != "config"},
        "paper_settings": list(run.paper_settings),
        "index": run.index,
        "backbone": identity["config"]["backbone"],
        "ibn": identity["config"]["ibn"],
        "source": identity["config"]["source_dataset"],
        **{key: recorded[key] for key in METRIC_KEYS},
        "data": recorded.get("data"),
        "notebook_seconds": executed.seconds,
    }


# ----------------------------------------------------------------------------- listing and planning text
def format_experiments() -> str:
    """The experiments with what they reproduce and how many runs they have per scale (``--list``)."""
    lines = []
    for experiment in EXPERIMENTS.values():
        lab = len(experiment.plan("lab"))
        full = len(experiment.plan("full"))
        lines += [
            f"{experiment.name:<16}{experiment.description}",
            f"{'':<16}reproduces: {experiment.reference}",
            f"{'':<16}runs: {lab} at tiny/lab scale (on SynthMarket), {full} at full scale "
            f"({', '.join(experiment.datasets)})",
            "",
        ]
    lines.append("Run one with: reidlab reproduce NAME --scale tiny|lab|full [--data-root DIR] [--dry-run]")
    return "\n".join(lines)


def format_plan(runs: Sequence[PlannedRun], *, results: str | Path, data_root: str | Path | None,
                seed: int) -> str:
    """What :func:`run_experiments` would do, without doing it (``--dry-run``).

    Validates every run's config (an invalid override raises here too).
    """
    lines = [f"{len(runs)} run(s), seed {seed}, results in {results}/, notebook {TRAIN_NOTEBOOK.name}:"]
    names = [f"{run.experiment}/{run.scale}/{run.label}" for run in runs]
    width = max(map(len, names), default=0)
    data = {key: current_data(key[0], data_root, scale=key[1]) for key in {(run.dataset, run.scale) for run in runs}}
    for name, run in zip(names, runs):
        identity = run.identity(seed)  # raises for an invalid method, dataset or override
        note = _check_same_settings(run.folder(results), identity, data[run.dataset, run.scale])
        status, epochs = run_status(run.folder(results))
        action = {"done": "skip (done)", "partial": f"resume after epoch {epochs}", "new": "run"}[status]
        action += f"; {note}" if note else ""
        overrides = json.dumps(identity["overrides"]) if run.overrides else "preset"
        source = identity["config"]["source_dataset"]
        lines.append(f"  {name:<{width}}  {run.method} on {run.dataset}" + (f" from {source}" if source else "")
                     + f" (vs paper {run.paper_dataset}), {overrides}, {identity['config']['epochs']} epochs: {action}")
    for name, scale in dict.fromkeys((name, run.scale) for run in runs for name in run.datasets_needed()):
        problem = dataset_problem(name, data_root, scale=scale)
        if problem is not None:
            lines.append(f"dataset missing: {problem}")
        elif name == LAB_DATASET and data_root is None and not default_synthmarket_root(scale).exists():
            lines.append(f"dataset: SynthMarket in {default_synthmarket_root(scale)} (generated on first use)")
        else:
            identity = data[name, scale] or {}
            lines.append(f"dataset: {DATASET_NAMES[name]} in {identity.get('root', data_root)} "
                         f"(fingerprint {identity.get('fingerprint', 'unknown')})")
    lines.append("Each run writes notebook.ipynb, metrics.json, config.json and train/ into its folder.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the results table
def collect_results(results: str | Path) -> list[dict[str, Any]]:
    """Every finished run's ``metrics.json`` under ``results``, in registry order (experiment, scale, run)."""
    order = {name: i for i, name in enumerate(EXPERIMENTS)}
    found = [_read_json(path) for path in sorted(Path(results).glob("*/*/*/metrics.json"))]
    return sorted(found, key=lambda m: (order.get(m["experiment"], len(order)), m["experiment"],
                                        SCALES.index(m["scale"]) if m["scale"] in SCALES else len(SCALES),
                                        m.get("index", 0), m["run"]))


@dataclass
class _Row:
    metrics: dict[str, Any]
    paper: PaperResult | None

    @property
    def trained_on(self) -> str:
        m = self.metrics
        name = DATASET_NAMES.get(m["dataset"], m["dataset"])
        if m["dataset"] != m["paper_dataset"]:
            name += f" (for {DATASET_NAMES.get(m['paper_dataset'], m['paper_dataset'])})"
        if m.get("source"):  # domain adaptation: labelled source -> target
            name = f"{DATASET_NAMES.get(m['source'], m['source'])} -> {name}"
        return name

    @property
    def backbone(self) -> str:
        m = self.metrics
        name = BACKBONE_NAMES.get(m["backbone"], m["backbone"]) + ("-IBN-a" if m.get("ibn") else "")
        start = {"full": "ImageNet", "lab": f"seed-{LAB_START_SEED} init"}.get(m["scale"], "source-pretrained")
        return f"{name} ({start})"

    def cells(self) -> list[str]:
        m, p = self.metrics, self.paper
        return [
            m["experiment"], m["run"], m["method"], self.trained_on, m["scale"], self.backbone,
            f"{100 * m['mAP']:.1f}", f"{100 * m['rank1']:.1f}",
            DATASET_NAMES.get(m["paper_dataset"], m["paper_dataset"]) + (f", {p.setting}" if p and p.setting else ""),
            p.backbone if p else "",
            f"{p.mAP:.1f}" if p else "n/r", f"{p.rank1:.1f}" if p else "n/r",
            (p.source + (f" ({p.note})" if p.note else "")) if p else "not reported in the papers' texts",
        ]


HEADER = ["experiment", "run", "method", "dataset used", "scale", "backbone", "reidlab mAP", "reidlab R1",
          "paper dataset, setting", "paper backbone", "paper mAP", "paper R1", "paper source"]

NOTES = [
    "mAP and Rank-1 in %; reidlab's are the last epoch's, the papers' are copied from their tables "
    "(reidlab/paper_results.py); n/r = not reported in the papers' texts.",
    "Lab and tiny scale train LabNet (pretrained with labels on a different SynthMarket) on SynthMarket, "
    "reidlab's CPU stand-in for Market-1501, with a short schedule: compare trends between a run and its "
    "neighbours (which mu, which update is best), not absolute values with the papers' ResNet-50 runs on "
    "the real datasets.",
    "SCWM's numbers (and its PPLR baseline's) use a SYNTH-PEDES-pretrained ResNet-50; reidlab's full "
    "scale starts from ImageNet weights, as SpCL, Cluster Contrast and HHCL do.",
    "Domain adaptation (source -> target): at lab and tiny scale the labelled source is SynthMarket's campus "
    "domain (eight cameras, other scenes, sensors and clothes; reidlab.training.domains.LAB_SOURCE), standing in "
    "for MSMT17 or Market-1501.",
]


def _rows(results: str | Path) -> list[_Row]:
    rows = []
    for m in collect_results(results):
        paper = find_paper_result(m["method"], m["paper_dataset"], m.get("paper_settings", [""]))
        rows.append(_Row(m, paper))
    return rows


def write_table(results: str | Path = "results") -> list[Path]:
    """Write ``results.md``, ``results.html`` and ``results.png`` into ``results``: reidlab's numbers of
    every finished run next to the papers' reported numbers.

    Returns:
        The three paths.

    Raises:
        FileNotFoundError: no finished run under ``results``.
    """
    results = Path(results)
    rows = _rows(results)
    if not rows:
        raise FileNotFoundError(f"no finished run under {results}/ (no */*/*/metrics.json): run "
                                f"`reidlab reproduce EXPERIMENT` first")
    png = results / "results.png"
    _plot(rows, png)
    md = results / "results.md"
    lines = ["# reidlab next to the papers", "", "| " + " | ".join(HEADER) + " |",
             "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |" for row in rows]
    lines += ["", f"![mAP: reidlab vs the papers]({png.name})", ""] + [f"- {note}" for note in NOTES]
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page = results / "results.html"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row.cells()) + "</tr>" for row in rows)
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in NOTES)
    page.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>reidlab next to the papers</title>\n"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #bbb;padding:3px 6px}th{background:#eee}</style></head><body>\n"
        f"<h1>reidlab next to the papers</h1>\n<table>\n<tr>{head}</tr>\n{body}\n</table>\n"
        f"<p><img src=\"{png.name}\" alt=\"mAP: reidlab vs the papers\"></p>\n<ul>{notes}</ul>\n</body></html>\n",
        encoding="utf-8",
    )
    return [md, page, png]


def _plot(rows: Sequence[_Row], path: Path) -> None:
    """Grouped bars: reidlab's and the paper's mAP per run."""
    import numpy as np

    from reidlab.plotting import Figure

    x = np.arange(len(rows))
    ours = [100 * row.metrics["mAP"] for row in rows]
    fig = Figure(figsize=(max(6.0, 0.55 * len(rows) + 2.0), 4.2), layout="constrained")
    ax = fig.subplots()
    scales = ", ".join(dict.fromkeys(row.metrics["scale"] for row in rows))
    bars = ax.bar(x - 0.2, ours, 0.4, label=f"reidlab ({scales} scale)", color="tab:blue")
    ax.bar_label(bars, fmt="%.1f", fontsize=6)
    reported = [(i, row.paper.mAP) for i, row in enumerate(rows) if row.paper is not None]
    if reported:
        bars = ax.bar([i + 0.2 for i, _ in reported], [v for _, v in reported], 0.4,
                      label="paper (full scale, real dataset)", color="tab:orange")
        ax.bar_label(bars, fmt="%.1f", fontsize=6)
    for i, row in enumerate(rows):
        if row.paper is None:
            ax.text(i + 0.2, 1.0, "n/r", ha="center", va="bottom", fontsize=7, color="0.4")
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_xticks(x, [f"{row.metrics['experiment']}/{row.metrics['run']}" for row in rows], rotation=60,
                  ha="right", fontsize=7)
    ax.set_ylabel("mAP (%)")
    ax.set_ylim(0, 100)
    ax.set_title("reidlab vs the papers' reported mAP", fontsize=10)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
