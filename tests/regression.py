"""Metric baselines: every notebook's recorded metrics at tiny scale, checked against ``tests/baselines/``.

Each notebook in ``notebooks/`` runs at tiny scale on CPU (the test session's tiny SynthMarket, seed 0,
plus the few parameters in :data:`NOTEBOOK_PARAMETERS`) and its :func:`reidlab.lab.notebook.record` values
are compared with ``tests/baselines/<notebook>.json``. A change that moves a metric beyond its tolerance
fails the test suite; ``make baselines`` re-records the files deliberately, so the move shows in review.

Metrics are flattened to dotted key paths (``histories.spcl.1.mAP``): dicts by key, lists by index.
Strings, booleans and ``None`` must stay equal; numbers may move within a tolerance. The default
tolerance of a key comes from its name (its last part that is not a list index):

* timings (``seconds``, ``*_seconds``, ``*_s``): ignored, they measure the machine;
* integers: exact (sizes, settings, epochs), except clustering outcomes, whose name has a
  ``_``-separated part ``clusters``, ``outliers``, ``rows`` or ``kept`` (``n_clusters``,
  ``memory_rows``): absolute 2 or relative 10%, whichever is larger;
* losses (a name containing ``loss``): relative 10%;
* average precisions (a name part ``mAP``, ``mINP``, ``AP`` or ``INP``, any case): absolute 0.02;
* other fractions (a name part ``rankN``, ``ARI``, ``NMI``, ``purity``, ``precision``, ``recall``,
  ``F1``, ``IoU``, ``mIoU`` or ``accuracy``): absolute 0.05, one query of the 30 in the tiny
  SynthMarket moves a rank-N accuracy by 0.033;
* other floats: relative 10% (absolute 1e-6 near zero).

Notebooks run with one OpenMP/MKL thread (:data:`KERNEL_ENVIRONMENT`), so two runs on one machine agree
(losses to 1e-7). The tolerances cover what another float summation order does: with two threads instead
of one, average precisions moved by at most 2e-4, ARI/NMI/recall by up to 0.012, cluster counts by one,
losses by under 0.1% except one loss after a re-clustering (hard Cluster Contrast's second epoch, 17%),
which its baseline file widens. Another CPU (an AMD EPYC host, the same code and wheels) moved two more
discrete outcomes: SpCL's outliers in notebook 01 (8 -> 4) and hard Cluster Contrast's second-epoch loss in
notebook 02's per-seed histories (11%); their baseline files widen those two keys as well.

A baseline file holds ``{"notebook", "recorded_with", "metrics", "tolerances"}``. ``metrics`` is the
flat dict, floats to 6 significant digits and ignored keys (timings) left out, so that re-recording an
unchanged notebook leaves the file unchanged. ``tolerances`` holds the per-key overrides, kept when the
file is re-recorded: ``"ignore"``, ``"exact"``, ``{"abs": x}``, ``{"rel": x}`` or both (the larger
allowance wins), keyed by a metric key or an :mod:`fnmatch` pattern (``histories.*.loss``); an exact
key beats patterns and a longer pattern beats a shorter one.

As a script (from the repository root)::

    python tests/regression.py --record          # re-record every baseline (what `make baselines` runs)
    python tests/regression.py --record 02 03    # only notebooks whose names start with 02 or 03
    python tests/regression.py                   # run and compare, without writing anything
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import math
import os
import platform
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script: the repository root is not on sys.path then
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reidlab.lab.notebook import NOTEBOOK_DIR, NotebookRun, list_notebooks, run_notebook  # noqa: E402

BASELINE_DIR = Path(__file__).resolve().parent / "baselines"
# The test session's tiny SynthMarket (tests/conftest.py: tiny_synthmarket_root).
TINY_SYNTHMARKET = {"preset": "tiny", "seed": 0}
# Extra papermill parameters per notebook (by file stem) that keep its tiny run short.
NOTEBOOK_PARAMETERS: dict[str, dict[str, Any]] = {
    "02_memory_banks": {"seeds": "0,1"},  # two seeds: the mean and spread code runs
    "03_hard_mining": {"mus": "0,0.5,1", "seeds": "0,1"},
    "05_weighted_memory": {"seeds": "0,1"},
}
# The notebook kernels run single-threaded: float summation order then does not depend on the cores.
KERNEL_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SIGNIFICANT_DIGITS = 6  # of the floats a baseline stores
RERECORD_HINT = "if the change is intended, run `make baselines` and commit tests/baselines/"

Scalar = int | float | str | bool | None


# ----------------------------------------------------------------------------- running notebooks
def notebooks(directory: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """The notebooks that get a baseline: the numbered ones in teaching order, then the unnumbered ones."""
    numbered = list_notebooks(directory)
    others = sorted(p for p in Path(directory).glob("*.ipynb") if p not in numbered)
    return numbered + others


def tiny_parameters(notebook: str | Path, data_root: str | Path) -> dict[str, Any]:
    """The papermill parameters of ``notebook``'s tiny run on the SynthMarket at ``data_root``."""
    return {"scale": "tiny", "data_root": str(data_root), **NOTEBOOK_PARAMETERS.get(Path(notebook).stem, {})}


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a ``with`` block, then restore them."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def run_tiny(notebook: str | Path, out_dir: str | Path, data_root: str | Path) -> NotebookRun:
    """Execute ``notebook`` at tiny scale into ``out_dir`` with :data:`KERNEL_ENVIRONMENT`.

    The caller points ``REIDLAB_DATA`` (cached pretrained weights) at a scratch folder.
    """
    notebook = Path(notebook)
    with environment(**KERNEL_ENVIRONMENT):
        return run_notebook(notebook, Path(out_dir) / notebook.name, tiny_parameters(notebook, data_root),
                            progress=False)


def generate_tiny_synthmarket(folder: str | Path) -> Path:
    """Generate the test session's tiny SynthMarket (:data:`TINY_SYNTHMARKET`) into ``folder``."""
    from reidlab.data import generate_synthmarket

    return generate_synthmarket(Path(folder) / "synthmarket-tiny", progress=False, **TINY_SYNTHMARKET)


# ----------------------------------------------------------------------------- flattening
def flatten(metrics: Any, prefix: str = "") -> dict[str, Scalar]:
    """Flatten nested metrics to ``{"a.b.0.c": value}``: dicts by key, lists by index.

    Raises:
        ValueError: two paths flatten to the same key (a dict key containing a dot can collide).
        TypeError: a leaf is not a number, string, bool or None.
    """
    if isinstance(metrics, Mapping):
        items = [(str(k), v) for k, v in metrics.items()]
    elif isinstance(metrics, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(metrics)]
    elif metrics is None or isinstance(metrics, (bool, int, float, str)):
        return {prefix: metrics}
    else:
        raise TypeError(f"metric {prefix!r} is a {type(metrics).__name__}; expected numbers, strings, lists, dicts")
    flat: dict[str, Scalar] = {}
    for key, value in items:
        for sub_key, leaf in flatten(value, f"{prefix}.{key}" if prefix else key).items():
            if sub_key in flat:
                raise ValueError(f"two metrics flatten to the same key {sub_key!r}; rename one of them")
            flat[sub_key] = leaf
    return flat


def is_number(value: Any) -> bool:
    """True for ints and floats, False for bools (compared exactly, like strings)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ----------------------------------------------------------------------------- tolerances
@dataclass(frozen=True)
class Tolerance:
    """How far a number may move: ``|now - baseline| <= max(abs, rel * |baseline|)``, or ignored."""

    abs: float = 0.0
    rel: float = 0.0
    ignore: bool = False

    def allows(self, baseline: Scalar, now: Scalar) -> bool:
        """Whether ``now`` is within tolerance of ``baseline`` (non-numbers must be equal)."""
        if self.ignore:
            return True
        if not (is_number(baseline) and is_number(now)):
            return type(baseline) is type(now) and baseline == now
        if math.isnan(baseline) or math.isnan(now):
            return math.isnan(baseline) and math.isnan(now)
        return abs(now - baseline) <= max(self.abs, self.rel * abs(baseline))

    def describe(self) -> str:
        """``"ignored"``, ``"exact"``, ``"abs 0.05"``, ``"rel 10%"`` or ``"abs 2 or rel 10%"``."""
        if self.ignore:
            return "ignored"
        parts = ([f"abs {self.abs:g}"] if self.abs else []) + ([f"rel {self.rel * 100:g}%"] if self.rel else [])
        return " or ".join(parts) or "exact"

    def to_json(self) -> str | dict[str, float]:
        """The baseline file's form, read back by :meth:`from_json`."""
        if self.ignore:
            return "ignore"
        if not (self.abs or self.rel):
            return "exact"
        return {k: v for k, v in (("abs", self.abs), ("rel", self.rel)) if v}

    @classmethod
    def from_json(cls, value: Any) -> Tolerance:
        """Read ``"ignore"``, ``"exact"`` or ``{"abs": x, "rel": y}`` (either key or both)."""
        if value == "ignore":
            return cls(ignore=True)
        if value == "exact":
            return cls()
        if isinstance(value, Mapping) and value and set(value) <= {"abs", "rel"} and all(
            is_number(v) and v >= 0 for v in value.values()
        ):
            return cls(abs=float(value.get("abs", 0.0)), rel=float(value.get("rel", 0.0)))
        raise ValueError(
            f"a tolerance must be 'ignore', 'exact' or {{'abs': x, 'rel': y}} with x, y >= 0, got {value!r}"
        )


EXACT = Tolerance()
TIMING = Tolerance(ignore=True)
CLUSTER_COUNT = Tolerance(abs=2, rel=0.10)
LOSS = Tolerance(rel=0.10)
AVERAGE_PRECISION = Tolerance(abs=0.02)
FRACTION = Tolerance(abs=0.05)
OTHER_FLOAT = Tolerance(abs=1e-6, rel=0.10)
CLUSTER_COUNT_WORDS = {"clusters", "outliers", "rows", "kept"}
AVERAGE_PRECISION_WORDS = {"map", "minp", "ap", "inp"}
FRACTION_WORDS = {"ari", "nmi", "purity", "precision", "recall", "f1", "iou", "miou", "accuracy"}


def metric_name(key: str) -> str:
    """The last part of a dotted key that is not a list index (``histories.spcl.1.mAP`` -> ``mAP``)."""
    parts = [p for p in key.split(".") if not p.isdigit()]
    return parts[-1] if parts else key


def default_tolerance(key: str, value: Scalar) -> Tolerance:
    """The tolerance a metric gets from its name and value (the rules in the module docstring)."""
    name = metric_name(key)
    if name == "seconds" or name.endswith(("_seconds", "_s")):
        return TIMING
    if not is_number(value):
        return EXACT
    words = set(name.lower().split("_"))
    if isinstance(value, int):
        return CLUSTER_COUNT if words & CLUSTER_COUNT_WORDS else EXACT
    if "loss" in name.lower():
        return LOSS
    if words & AVERAGE_PRECISION_WORDS:
        return AVERAGE_PRECISION
    if words & FRACTION_WORDS or any(re.fullmatch(r"rank\d+", w) for w in words):
        return FRACTION
    return OTHER_FLOAT


def parse_tolerances(tolerances: Mapping[str, Any]) -> dict[str, Tolerance]:
    """A baseline file's ``tolerances`` (key or pattern -> JSON tolerance) as :class:`Tolerance` objects."""
    return {key: Tolerance.from_json(value) for key, value in tolerances.items()}


def tolerance_for(key: str, value: Scalar, overrides: Mapping[str, Tolerance]) -> Tolerance:
    """``key``'s override (exact key, else the longest matching pattern), else its default."""
    if key in overrides:
        return overrides[key]
    patterns = [p for p in overrides if fnmatch.fnmatchcase(key, p)]
    if patterns:
        return overrides[max(patterns, key=len)]
    return default_tolerance(key, value)


# ----------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class Change:
    """One metric that differs from its baseline: ``kind`` is "moved", "new" or "removed"."""

    key: str
    baseline: Scalar
    now: Scalar
    tolerance: Tolerance | None
    kind: str

    def describe(self) -> str:
        """One line of a failure report: key, baseline, now and tolerance."""
        if self.kind == "new":
            return f"{self.key}: new metric (now {self.now!r}), not in the baseline"
        if self.kind == "removed":
            return f"{self.key}: removed (baseline {self.baseline!r}), no longer recorded"
        return f"{self.key}: baseline {self.baseline!r}, now {self.now!r}, tolerance {self.tolerance.describe()}"


_MISSING = object()


def compare(
    baseline: Mapping[str, Scalar], now: Mapping[str, Scalar], overrides: Mapping[str, Tolerance] | None = None
) -> list[Change]:
    """Every flat metric that moved beyond its tolerance, appeared or disappeared, in key order.

    Args:
        baseline: recorded flat metrics.
        now: this run's flat metrics.
        overrides: per-key (or pattern) tolerances that replace the defaults.
    """
    overrides = overrides or {}
    changes = []
    for key in sorted(set(baseline) | set(now)):
        old, new = baseline.get(key, _MISSING), now.get(key, _MISSING)
        tolerance = tolerance_for(key, new if old is _MISSING else old, overrides)
        if tolerance.ignore:
            continue
        if old is _MISSING:
            changes.append(Change(key, None, new, None, "new"))
        elif new is _MISSING:
            changes.append(Change(key, old, None, None, "removed"))
        elif not tolerance.allows(old, new):
            changes.append(Change(key, old, new, tolerance, "moved"))
    return changes


def stored_metrics(metrics: Mapping[str, Any], overrides: Mapping[str, Tolerance]) -> dict[str, Scalar]:
    """The flat metrics as a baseline stores them: floats to :data:`SIGNIFICANT_DIGITS`, ignored keys left out.

    Rounding keeps a re-recorded file unchanged when only float noise moved (losses differ by ~1e-7
    between two runs); timings are left out because they change on every run.
    """
    flat = {k: float(f"{v:.{SIGNIFICANT_DIGITS}g}") if isinstance(v, float) else v for k, v in flatten(metrics).items()}
    return {k: v for k, v in flat.items() if not tolerance_for(k, v, overrides).ignore}


# ----------------------------------------------------------------------------- baseline files
def baseline_path(notebook: str | Path, baseline_dir: str | Path = BASELINE_DIR) -> Path:
    """``tests/baselines/<notebook stem>.json``."""
    return Path(baseline_dir) / f"{Path(notebook).stem}.json"


def recorded_with() -> dict[str, str]:
    """The software a baseline was recorded with (shown when a comparison fails)."""
    import torch

    return {"torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}


def make_baseline(
    notebook: str | Path, metrics: Mapping[str, Any], tolerances: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A baseline file's content for ``notebook``'s recorded (nested) ``metrics`` and the JSON ``tolerances``."""
    overrides = parse_tolerances(tolerances or {})
    return {"notebook": Path(notebook).name, "recorded_with": recorded_with(),
            "metrics": stored_metrics(metrics, overrides), "tolerances": {k: v.to_json() for k, v in overrides.items()}}


def read_baseline(path: str | Path) -> dict:
    """Load a baseline file and check its fields."""
    baseline = json.loads(Path(path).read_text())
    missing = {"notebook", "metrics", "tolerances"} - set(baseline)
    if missing:
        raise ValueError(f"baseline {str(path)!r} lacks {sorted(missing)}; {RERECORD_HINT}")
    return baseline


def write_baseline(path: str | Path, baseline: Mapping[str, Any]) -> None:
    """Write ``baseline`` pretty-printed with sorted keys (one metric per line: readable diffs)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n")


def check(notebook: str | Path, metrics: Mapping[str, Any], baseline_dir: str | Path = BASELINE_DIR) -> str | None:
    """Compare ``notebook``'s recorded metrics with its baseline file.

    Returns:
        ``None`` when every metric is within tolerance, else a report listing every change and ending
        with :data:`RERECORD_HINT`.
    """
    name = Path(notebook).name
    path = baseline_path(notebook, baseline_dir)
    if not path.is_file():
        return f"{name} has no baseline {path}; {RERECORD_HINT}"
    baseline = read_baseline(path)
    overrides = parse_tolerances(baseline["tolerances"])
    changes = compare(baseline["metrics"], stored_metrics(metrics, overrides), overrides)
    if not changes:
        return None
    recorded = baseline.get("recorded_with", {})
    software = ", ".join(f"{k} {recorded[k]}" for k in ("torch", "python", "platform") if k in recorded)
    lines = [f"{name}: {len(changes)} metric(s) differ from {path.name} (recorded with {software}):"]
    lines += [f"  {change.describe()}" for change in changes]
    lines.append(RERECORD_HINT)
    return "\n".join(lines)


def orphan_baselines(directory: str | Path = NOTEBOOK_DIR, baseline_dir: str | Path = BASELINE_DIR) -> list[Path]:
    """Baseline files whose notebook no longer exists."""
    stems = {p.stem for p in notebooks(directory)}
    return sorted(p for p in Path(baseline_dir).glob("*.json") if p.stem not in stems)


# ----------------------------------------------------------------------------- script
def select(prefixes: Sequence[str], directory: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """The notebooks whose names start with one of ``prefixes`` (all of them when empty)."""
    available = notebooks(directory)
    if not prefixes:
        return available
    chosen = [p for p in available if any(p.name.startswith(prefix) for prefix in prefixes)]
    unmatched = [x for x in prefixes if not any(p.name.startswith(x) for p in available)]
    if unmatched:
        names = ", ".join(p.name for p in available)
        raise ValueError(f"no notebook starts with {unmatched}; available: {names}")
    return chosen


def run_all(chosen: Sequence[Path], work_dir: Path) -> dict[Path, dict[str, Any]]:
    """Run ``chosen`` at tiny scale like the test session: a fresh ``REIDLAB_DATA`` and tiny SynthMarket."""
    results = {}
    with environment(REIDLAB_DATA=str(work_dir / "reidlab-data")):
        data_root = generate_tiny_synthmarket(work_dir / "data")
        for notebook in chosen:
            print(f"running {notebook.name} at tiny scale ...", flush=True)
            run = run_tiny(notebook, work_dir / "executed", data_root)
            print(f"  {run.seconds:.0f} s, {len(flatten(run.metrics))} metrics", flush=True)
            results[notebook] = run.metrics
    return results


def record_baselines(prefixes: Sequence[str] = (), baseline_dir: str | Path = BASELINE_DIR) -> str:
    """Re-run notebooks (all, or those matching ``prefixes``) and rewrite their baseline files.

    Per-key tolerance overrides are kept. Recording every notebook also deletes orphan baselines.

    Returns:
        A summary: per notebook, the metrics that changed (even within tolerance), appeared or vanished.
    """
    chosen = select(prefixes)
    with tempfile.TemporaryDirectory(prefix="reidlab-baselines-") as tmp:
        results = run_all(chosen, Path(tmp))
    lines = []
    for notebook, metrics in results.items():
        path = baseline_path(notebook, baseline_dir)
        old = read_baseline(path) if path.is_file() else None
        new = make_baseline(notebook, metrics, old["tolerances"] if old else None)
        write_baseline(path, new)
        if old is None:
            lines.append(f"{path.name}: new baseline, {len(new['metrics'])} metrics")
            continue
        overrides = parse_tolerances(new["tolerances"])
        changed = compare(old["metrics"], new["metrics"], {"*": EXACT})
        lines.append(f"{path.name}: {len(changed)} change(s), {len(new['metrics'])} metrics recorded")
        for change in changed:
            if change.kind != "moved":
                lines.append(f"  {change.describe()}")
                continue
            tolerance = tolerance_for(change.key, change.baseline, overrides)
            within = tolerance.allows(change.baseline, change.now)
            mark = "" if within else f"  BEYOND tolerance {tolerance.describe()}"
            lines.append(f"  {change.key}: {change.baseline!r} -> {change.now!r}{mark}")
    if not prefixes:
        for orphan in orphan_baselines(baseline_dir=baseline_dir):
            orphan.unlink()
            lines.append(f"{orphan.name}: deleted, its notebook no longer exists")
    return "\n".join(lines)


def check_baselines(prefixes: Sequence[str] = (), baseline_dir: str | Path = BASELINE_DIR) -> list[str]:
    """Run notebooks and compare them with their baselines; the failure reports (empty when all pass)."""
    with tempfile.TemporaryDirectory(prefix="reidlab-baselines-") as tmp:
        results = run_all(select(prefixes), Path(tmp))
    reports = [check(notebook, metrics, baseline_dir) for notebook, metrics in results.items()]
    orphans = orphan_baselines(baseline_dir=baseline_dir)
    reports += [f"{path.name}: its notebook no longer exists; {RERECORD_HINT}" for path in orphans]
    return [r for r in reports if r]


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``--record [NOTEBOOK_PREFIX ...]`` rewrites baselines, otherwise compares (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", metavar="NOTEBOOK_PREFIX", help="e.g. 02 (default: every notebook)")
    parser.add_argument("--record", action="store_true", help="rewrite the baseline files instead of comparing")
    parser.add_argument("--baseline-dir", type=Path, default=BASELINE_DIR, help="default: tests/baselines/")
    args = parser.parse_args(argv)
    if args.record:
        print(record_baselines(args.prefixes, args.baseline_dir))
        return 0
    reports = check_baselines(args.prefixes, args.baseline_dir)
    print("\n\n".join(reports) if reports else "every metric is within its tolerance")
    return 1 if reports else 0


if __name__ == "__main__":
    sys.exit(main())
