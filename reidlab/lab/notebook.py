"""Notebook tooling: recorded metrics and papermill execution.

Every notebook in ``notebooks/`` starts with a ``parameters`` cell (``scale``, ``dataset``,
``data_root``, ``seed``...) so that papermill can run it at ``tiny`` scale (tests), ``lab`` scale
(``make demo``, CPU minutes) or ``full`` scale (the papers' settings, GPU). Key results are recorded with
:func:`record`, which writes them into the notebook's own outputs under a dedicated MIME type, so an
executed copy carries its metrics and :func:`read_metrics` reads them back (tests, summaries).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reidlab.config import NOTEBOOK_DIR, check_scale
from reidlab.utils import format_duration, write_atomically

logger = logging.getLogger(__name__)

METRICS_MIME = "application/vnd.reidlab.metrics+json"


# The first line of every workbench notebook's parameters cell, and of the cell papermill injects after it.
PARAMETERS_HEADER = "# Parameters (papermill injects its values after this cell)"
_INJECTED_HEADER = "# Parameters\n"


def declared_parameters(notebook: str | Path) -> list[str]:
    """The parameters ``notebook`` declares in its ``parameters`` cell (papermill's own reading)."""
    import papermill

    return list(papermill.inspect_notebook(str(notebook)))


def check_parameters(notebook: str | Path, parameters: Mapping[str, Any]) -> None:
    """Refuse parameters that ``notebook`` does not declare (a typo would otherwise run with the default).

    Raises:
        ValueError: naming the unknown parameters and the valid ones.
    """
    declared = declared_parameters(notebook)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"{Path(notebook).name} has no parameter {', '.join(map(repr, unknown))}; its parameters: "
                         f"{', '.join(declared)}")


def check_injected_parameters() -> None:
    """In a running notebook: refuse parameters papermill injected that the parameters cell does not declare.

    ``papermill -p sacle tiny`` would otherwise run the whole notebook at its default scale without a word.
    Reads the kernel's input history: the parameters cell (it starts with :data:`PARAMETERS_HEADER`) and
    the cell papermill injected after it. Outside papermill (JupyterLab) there is nothing to check.

    Raises:
        ValueError: naming the unknown parameters and the declared ones.
    """
    from IPython import get_ipython

    shell = get_ipython()
    history = shell.user_ns.get("In", []) if shell is not None else []
    declared = next((_assigned(s) for s in reversed(history) if s.startswith(PARAMETERS_HEADER)), None)
    injected = next((_assigned(s) for s in reversed(history) if s.startswith(_INJECTED_HEADER)), None)
    if declared is None or injected is None:
        return
    unknown = sorted(set(injected) - set(declared))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(map(repr, unknown))} (papermill -p / -r); this notebook's "
                         f"parameters: {', '.join(declared)}")


def _assigned(source: str) -> list[str]:
    """The names a cell assigns at its top level, in order."""
    import ast

    names = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) \
            else []
        names += [target.id for target in targets if isinstance(target, ast.Name)]
    return names


def _plain(value: Any) -> Any:
    """Turn numpy/torch scalars and arrays into JSON-serialisable Python values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays/scalars, torch tensors
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(f"cannot record {type(value).__name__} value {value!r}: use numbers, strings, lists or dicts")


def record(**metrics: Any) -> None:
    """Record named results in the running notebook's output.

    Papermill keeps every output of an executed notebook, so the metrics travel with the executed copy
    and :func:`read_metrics` can read them back. The values are checked (JSON-like) everywhere and
    displayed only inside IPython; nothing is returned, so a ``record(...)`` at the end of a cell does
    not print the values again.

    Args:
        **metrics: names and JSON-like values (numbers, strings, lists, dicts, numpy/torch scalars).
    """
    values = _plain(metrics)
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is not None:
        text = "recorded: " + ", ".join(f"{k}={_short(v)}" for k, v in values.items())
        display({METRICS_MIME: values, "text/plain": text}, raw=True)


_SCALE_NOTES = {
    "tiny": "TINY SCALE: a few images, iterations and epochs. The numbers below only prove that the code runs; "
            "they say nothing about how the methods compare (run at lab scale for that).",
    "lab": "LAB SCALE: LabNet on SynthMarket on a CPU, short schedules. The numbers show the shape of the papers' "
           "comparisons (which is above which), not their values.",
}


def scale_banner(scale: str) -> None:
    """Print what the numbers of a notebook run at ``scale`` can and cannot show, framed so it cannot be missed
    (tiny: they only prove that the code runs; lab: shapes, not the papers' values; full: nothing)."""
    note = _SCALE_NOTES.get(check_scale(scale))
    if note:
        rule = "=" * 100
        print(f"{rule}\n{textwrap.fill(note, width=len(rule))}\n{rule}")  # wrapped at words, inside the rules


def check_claim(holds: bool, claim: str, evidence: str = "") -> bool:
    """State a result sentence only as far as this run supports it.

    Prints ``claim`` with its ``evidence`` (the numbers) when ``holds``; otherwise a visible warning that this
    run contradicts it, with the same numbers. Notebook text that states a result goes through here, so a run
    whose numbers say otherwise never sits under a sentence that says the opposite.

    Returns:
        ``holds``, as a bool.
    """
    suffix = f" ({evidence})" if evidence else ""
    print(f"OK: {claim}{suffix}" if holds else f"WARNING: this run contradicts the claim \"{claim}\"{suffix}")
    return bool(holds)


# Training seeds of the notebooks whose comparisons are claims, when their ``seeds`` parameter is None: three at lab
# scale (a difference between two methods is then read against one method's spread), one elsewhere (tiny: seconds;
# full: a GPU day a run).
DEFAULT_SEEDS = {"tiny": (0,), "lab": (0, 1, 2), "full": (0,)}


def parse_seeds(seeds: str | None, scale: str) -> list[int]:
    """The training seeds a notebook's ``seeds`` parameter names: comma-separated integers (``"0,1,2"``), or
    None for the scale's default (:data:`DEFAULT_SEEDS`). Raises ValueError on anything else, and on a seed
    given twice (its run would be counted twice in the mean)."""
    if seeds is None:
        return list(DEFAULT_SEEDS[check_scale(scale)])
    parts = [part.strip() for part in str(seeds).split(",") if part.strip()]
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise ValueError(f"seeds must be comma-separated integers such as '0,1,2', got {seeds!r}") from None
    if not values:
        raise ValueError(f"seeds names no seed: {seeds!r}; give e.g. '0' or '0,1,2' (or None for the scale's default)")
    if len(set(values)) != len(values):
        raise ValueError(f"seeds repeats a seed: {seeds!r}; each seed's run would count twice in the mean")
    return values


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_metrics(notebook: str | Path) -> dict[str, Any]:
    """All metrics recorded by :func:`record` in an executed notebook (later records win).

    Args:
        notebook: path of an executed ``.ipynb``.
    """
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    metrics: dict[str, Any] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            if METRICS_MIME in data:
                metrics.update(data[METRICS_MIME])
    return metrics


def list_notebooks(directory: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """The workbench notebooks in teaching order (``NN_name.ipynb``)."""
    return sorted(p for p in Path(directory).glob("[0-9][0-9]_*.ipynb"))


@dataclass
class NotebookRun:
    """The outcome of one papermill execution (``skipped``: an earlier execution with the same signature)."""

    notebook: Path
    output: Path
    seconds: float
    metrics: dict[str, Any]
    skipped: bool = False


def _kernel_manager_class():
    """A kernel manager that talks to the kernel over IPC (Unix sockets) rather than TCP: the kernel then
    has no reason to warn that TCP traffic is unencrypted, and nothing listens on the network.

    Each kernel's sockets get their own name in the temporary folder: jupyter_client's default names them
    ``kernel-ipc-<n>`` in the working directory, where two notebooks run side by side from the same folder
    would pick the same names and talk to each other's kernel."""
    import tempfile
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc" if os.name == "posix" else "tcp"

        @default("ip")
        def _ip_default(self) -> str:
            if self.transport != "ipc":
                return super()._ip_default()
            return os.path.join(tempfile.gettempdir(), f"reidlab-kernel-{uuid.uuid4().hex[:12]}")

    return IPCKernelManager


def run_notebook(
    notebook: str | Path,
    output: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    progress: bool = True,
) -> NotebookRun:
    """Execute ``notebook`` with papermill into ``output`` and read back its metrics.

    The notebook runs with its own folder as working directory and with this Python's kernel. Parameters
    the notebook does not declare are refused before anything runs.

    Args:
        notebook: the source notebook.
        output: where the executed copy is written (its folder is created).
        parameters: values injected after the notebook's ``parameters`` cell.
        progress: show papermill's cell progress bar.
    """
    import papermill

    notebook, output = Path(notebook), Path(output)
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook {str(notebook)!r} does not exist")
    check_parameters(notebook, parameters or {})
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=dict(parameters or {}),
        cwd=str(notebook.parent),
        progress_bar=progress,
        kernel_name="python3",
        kernel_manager_class=_kernel_manager_class(),
    )
    return NotebookRun(notebook, output, time.perf_counter() - start, read_metrics(output))


def signature(notebook: str | Path, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """What an execution of ``notebook`` depends on: its parameters, its cells and the library's code.

    Two executions with the same signature give the same results (the same seed repeats exactly on the
    CPU), so :func:`run_notebooks` skips a notebook already executed with it. The kernel's thread count is not
    part of it: run on another number of threads (another ``jobs``) a notebook sums in another order and its
    numbers differ by float rounding, which training amplifies; ``skip_done=False`` executes it again.
    """
    import nbformat

    cells = nbformat.read(str(notebook), as_version=4).cells
    source = hashlib.sha1("\x00".join(cell.source for cell in cells).encode()).hexdigest()[:16]
    library = hashlib.sha1()
    for path in sorted(Path(__file__).resolve().parents[1].rglob("*.py")):
        library.update(path.read_bytes())
    return {"parameters": _plain(dict(parameters)), "notebook": source, "library": library.hexdigest()[:16]}


def expected_seconds(notebook: str | Path, scale: str) -> float | None:
    """How long ``notebook`` took at ``scale`` when the README's timings were measured (``make demo`` on an idle
    2-core CPU), from its metadata (``reidlab.expected_minutes``); ``None`` when it declares none."""
    import nbformat

    minutes = nbformat.read(str(notebook), as_version=4).metadata.get("reidlab", {}).get("expected_minutes", {})
    return 60.0 * minutes[scale] if scale in minutes else None


def kernel_threads(jobs: int) -> int:
    """Threads for each of ``jobs`` kernels that run side by side: the machine's cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // jobs)


def _stop_on_terminate(signum: int, frame: Any) -> None:
    """SIGTERM handler of a worker: stop as Ctrl-C would."""
    raise KeyboardInterrupt


def _worker_signals() -> None:
    """A worker of :func:`_run_side_by_side` leaves Ctrl-C to its parent and stops when the parent terminates it
    (SIGTERM, raised as KeyboardInterrupt so that the kernel is shut down on the way out)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_on_terminate)


def _run_in_worker(notebook: Path, output: Path, params: dict[str, Any], threads: int,
                   progress: bool) -> NotebookRun:
    """:func:`run_notebook` in a worker process, its kernel limited to ``threads`` threads (torch, faiss and
    BLAS read ``OMP_NUM_THREADS`` when they start). A value the user exported is kept."""
    if not os.environ.get("OMP_NUM_THREADS"):
        os.environ["OMP_NUM_THREADS"] = str(threads)
    return run_notebook(notebook, output, params, progress=progress)


@dataclass
class _Pending:
    """A notebook :func:`run_notebooks` has to execute."""

    name: str
    notebook: Path
    output: Path
    params: dict[str, Any]
    signature: dict[str, Any]
    expected: float | None  # seconds, from its last execution or its metadata
    last_time: bool  # ``expected`` is its own time last time (else the README's measurement)

    def about(self) -> str:
        if self.expected is None:
            return ""
        source = "last time" if self.last_time else "in the README's make demo"
        return f", about {format_duration(self.expected)} {source}"

    def record(self, run: NotebookRun, summary_path: Path, report: Callable[[str], None]) -> None:
        """Keep ``run``'s time, signature and metrics in ``metrics.json``, then say it is done."""
        _record_run(summary_path, self.notebook.name,
                    {"seconds": round(run.seconds, 1), "signature": self.signature, **run.metrics})
        report(f"{self.name}: done in {format_duration(run.seconds)}")


def run_notebooks(
    out_dir: str | Path,
    *,
    scale: str = "lab",
    notebooks: Iterable[str | Path] | None = None,
    parameters: Mapping[str, Any] | None = None,
    optional: Mapping[str, Any] | None = None,
    progress: bool = True,
    skip_done: bool = True,
    jobs: int = 1,
    report: Callable[[str], None] | None = None,
) -> list[NotebookRun]:
    """Execute notebooks (all of them by default) at ``scale`` into ``out_dir``.

    ``out_dir/metrics.json`` keeps, per notebook, its metrics, its time and the :func:`signature` of its
    execution; it is rewritten after every notebook, so an interrupted call keeps what it finished (and a call
    running beside it with the same ``out_dir`` keeps its entries too). With
    ``skip_done``, a notebook whose executed copy exists with the same signature is not run again: the
    same command after an interruption continues where it stopped.

    With ``jobs`` above 1, that many notebooks execute at once, each in its own process and kernel with
    :func:`kernel_threads` threads. On a 2-core CPU two one-thread kernels finish a set of notebooks far sooner
    than one two-thread kernel after another (``make demo``'s seven: 18 minutes instead of 30): a kernel spends
    part of every step on one thread (loading and augmenting images), which leaves the second core idle. The
    longest notebooks start first (their time last time, else :func:`expected_seconds`), so that the lanes end
    close together. A one-thread kernel sums in another order than a two-thread one, so its numbers can differ
    from a sequential run's by float rounding, which training amplifies (up to a few points of mAP). If a notebook
    fails, the ones running finish and are recorded, nothing new starts, and the error is raised. The workers
    are spawned processes: a script that calls this with ``jobs`` above 1 needs an
    ``if __name__ == "__main__":`` guard.

    Args:
        out_dir: folder of the executed copies (``<name>.ipynb``) and ``metrics.json``.
        scale: ``"tiny"``, ``"lab"`` or ``"full"``, passed to every notebook.
        notebooks: paths, or name prefixes such as ``"00"``; all notebooks when ``None``.
        parameters: extra parameters for every notebook (``data_root``, ``seed``...).
        optional: parameters for the notebooks that declare them only (``seeds``: the training notebooks).
        progress: show progress bars (with ``jobs`` above 1 only when a single notebook runs: side by side
            they would interleave).
        skip_done: skip notebooks executed before with the same signature.
        jobs: notebooks executed at once (at least 1).
        report: called with one line before and after each notebook (what runs, its expected time); default:
            logging.

    Returns:
        One :class:`NotebookRun` per chosen notebook, in the order they were chosen.
    """
    check_scale(scale)
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1 (notebooks executed at once), got {jobs}")
    report = report or logger.info
    available = list_notebooks()
    if notebooks is None:
        chosen = available
    else:
        chosen = []
        for item in notebooks:
            path = Path(item)
            matches = [path] if path.suffix == ".ipynb" else [p for p in available if p.name.startswith(str(item))]
            if not matches:
                names = ", ".join(p.name for p in available)
                raise ValueError(f"no notebook matches {str(item)!r}; available: {names}")
            chosen.extend(matches)
    out_dir = Path(out_dir)
    summary_path = out_dir / "metrics.json"
    summary = _read_summary(summary_path)
    runs: dict[int, NotebookRun] = {}
    pending: dict[int, _Pending] = {}
    for number, notebook in enumerate(chosen, start=1):
        declared = declared_parameters(notebook) if optional else []
        params = {"scale": scale, **dict(parameters or {}),
                  **{key: value for key, value in (optional or {}).items() if key in declared}}
        output = out_dir / notebook.name
        wanted = signature(notebook, params)
        before = summary.get(notebook.name, {})
        name = f"[{number}/{len(chosen)}] {notebook.name}"
        if skip_done and before.get("signature") == wanted and output.is_file():
            report(f"{name}: skipped, already executed with the same parameters and code ({output})")
            runs[number] = NotebookRun(notebook, output, before.get("seconds", 0.0), read_metrics(output), skipped=True)
            continue
        last = before.get("seconds")
        pending[number] = _Pending(name, notebook, output, params, wanted,
                                   last if last else expected_seconds(notebook, scale), bool(last))
    if jobs == 1:
        for number, item in pending.items():
            report(f"{item.name}: running at {scale} scale{item.about()}")
            runs[number] = run_notebook(item.notebook, item.output, item.params, progress=progress)
            item.record(runs[number], summary_path, report)
    elif pending:  # even one notebook goes to a worker: on the threads it would have beside another
        runs.update(_run_side_by_side(pending, jobs, scale, summary_path, report, progress))
    return [runs[number] for number in sorted(runs)]


def _run_side_by_side(pending: Mapping[int, _Pending], jobs: int, scale: str, summary_path: Path,
                      report: Callable[[str], None], progress: bool) -> dict[int, NotebookRun]:
    """The ``jobs``-at-a-time branch of :func:`run_notebooks`: the longest first, each in a spawned process with
    :func:`kernel_threads` threads (also when fewer notebooks than ``jobs`` are left; a single one shows its
    progress bar)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    lanes = min(jobs, len(pending))
    threads = kernel_threads(jobs)
    exported = os.environ.get("OMP_NUM_THREADS")
    share = f"OMP_NUM_THREADS={exported} as exported" if exported else f"{threads} thread{'s' * (threads > 1)}"
    if lanes == 1:
        report(f"1 notebook, on {share}: its share of the cores with {jobs} at a time")
    else:
        report(f"{len(pending)} notebooks, {jobs} at a time ({share}{'' if exported else ' each'}); "
               "the longest start first")
    queue = sorted(pending, key=lambda number: -(pending[number].expected or 0.0))
    runs: dict[int, NotebookRun] = {}
    failure: BaseException | None = None
    pool = ProcessPoolExecutor(lanes, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_signals)
    try:
        running = {}
        while queue or running:
            while queue and len(running) < lanes and failure is None:
                number = queue.pop(0)
                item = pending[number]
                report(f"{item.name}: running at {scale} scale{item.about()}")
                running[pool.submit(_run_in_worker, item.notebook, item.output, item.params, threads,
                                    progress and lanes == 1)] = number
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                number = running.pop(future)
                item = pending[number]
                try:
                    run = future.result()
                except Exception as error:  # the others finish and are recorded; then it is raised
                    report(f"{item.name}: failed ({type(error).__name__})"
                           + (", waiting for the notebooks still running" if running else ""))
                    failure = failure or error
                    continue
                runs[number] = run
                item.record(run, summary_path, report)
    except BaseException:  # Ctrl-C: stop the workers (each shuts its kernel down) and wait for them
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    if failure is not None:
        if queue:
            report("not started after the failure: " + ", ".join(pending[number].name for number in queue))
        raise failure
    return runs


def _read_summary(path: Path) -> dict:
    """``metrics.json`` as it is on disk now; empty when missing or unreadable (that only costs re-running)."""
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}


def _record_run(path: Path, name: str, entry: dict) -> dict:
    """Put one notebook's ``entry`` into ``metrics.json`` and return the summary written.

    The file is read again just before writing, so the entries another ``reidlab demo`` wrote into the same folder
    in the meantime are kept (two notebooks executed side by side), and it is replaced whole
    (:func:`reidlab.utils.write_atomically`), so a reader never sees half of it.
    """
    summary = _read_summary(path)
    summary[name] = entry
    write_atomically(path, lambda partial: partial.write_text(json.dumps(summary, indent=2)))
    return summary


def format_summary(runs: Iterable[NotebookRun], *, max_metrics: int = 8) -> str:
    """A short text summary: one block per notebook with its time and its scalar metrics."""
    lines = []
    runs = list(runs)
    for run in runs:
        lines.append(f"{run.notebook.name}  ({run.seconds:.0f} s{', skipped: done before' if run.skipped else ''})"
                     f"  ->  {run.output}")
        scalars = [(k, v) for k, v in run.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for key, value in scalars[:max_metrics]:
            lines.append(f"    {key:<32} {value:.4g}" if isinstance(value, float) else f"    {key:<32} {value}")
    ran = sum(run.seconds for run in runs if not run.skipped)
    total = sum(run.seconds for run in runs)
    lines.append(f"total: {total / 60:.1f} min of notebook time ({ran / 60:.1f} min executed now)")
    return "\n".join(lines)
