"""Every widget of the notebooks in a real browser: JupyterLab + headless Chromium (Selenium).

For each notebook: copy it with ``scale="tiny"`` injected (papermill's parameters cell), open it in
JupyterLab, Run All Cells, then operate each control as a user does (a slider's handle gets End or Home,
a dropdown a selection, a checkbox or button a click) and check that the kernel answered: the control's
readout moved, the output linked to it (its box's Output or Image widget and summary line) differs, and
the summary names the new setting. The notebook's controls must be exactly those listed in
:data:`NOTEBOOK_WIDGETS`, so a new slider cannot go untested; its training monitors must each show a plot
and an ``epoch N`` line. Screenshots go to ``artifacts/browser/<notebook>-<control>-{before,after}.png``
and each notebook's moves to ``artifacts/browser/<notebook>-moves.txt``.

One JupyterLab and one Chromium serve the module. Needs the apt packages ``chromium chromium-driver``
and the pip package ``selenium``. Without them the tests are skipped with the reason, except where the
environment sets ``REIDLAB_REQUIRE_BROWSER=1`` (``.ci/run`` does): there they fail, so CI can never pass
without them.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib.util
import itertools
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from browser import (
    BrowserTestError,
    JupyterLabServer,
    NotebookPage,
    find_browser,
    start_chromium,
)
from regression import KERNEL_ENVIRONMENT, tiny_parameters

from reidlab.config import NOTEBOOK_DIR
from reidlab.lab.notebook import parse_seeds
from reidlab.lab.toy import TOY_SUMMARY_CLASS
from reidlab.lab.widgets import MONITOR_SUMMARY_CLASS

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"

pytestmark = pytest.mark.slow


@dataclasses.dataclass(frozen=True)
class Operate:
    """One control to operate, by its description, and what its output must show afterwards.

    Attributes:
        label: the widget's description (the text beside it).
        kind: ``"slider"``, ``"dropdown"``, ``"checkbox"``, ``"button"`` or ``"toggle"``.
        option: the option a dropdown selects.
        shows: text the linked output must contain afterwards; ``{value}`` is the control's new readout.
        changes: a regex whose first group must read differently in the output before and after.
    """

    label: str
    kind: str = "slider"
    option: str | None = None
    shows: str | None = None
    changes: str | None = None


@dataclasses.dataclass(frozen=True)
class NotebookWidgets:
    """A notebook's controls (all of them, in the order operated) and its number of training monitors, a
    number or a function of the run's parameters (the notebook's defaults with the injected values)."""

    controls: tuple[Operate, ...]
    monitors: int | Callable[[dict[str, Any]], int]


# Every control of every notebook. Sliders go to the end farther from their value (End on a tie).
NOTEBOOK_WIDGETS = {
    # reidlab.lab.widgets.ClusteringExplorer: the summary line names the setting and the cluster count.
    "01_clustering": NotebookWidgets(
        (
            Operate("eps", shows="eps {value}", changes=r"clusters: (\d+)"),
            Operate("min_samples", shows="min_samples {value}"),
            Operate("k1", shows="k1 {value}"),
            Operate("k2", shows="k2 {value}"),
        ),
        monitors=0,
    ),
    # reidlab.lab.toy.MemoryToy; one monitor per method and seed trained.
    "02_memory_banks": NotebookWidgets(
        (
            Operate("memory", "dropdown", option="hybrid", shows="hybrid memory"),
            Operate("momentum m", shows="m {value}", changes=r"rows moved, by ([\d.]+)"),
            Operate("temperature tau", shows="tau {value}", changes=r"p\(own class\) ([\d.]+)"),
            Operate("new batch", "button", shows="batch seed 1"),
        ),
        monitors=lambda parameters: len(names(parameters["methods"])) * n_seeds(parameters),
    ),
    # reidlab.lab.toy.MuToy; one monitor per mu of the sweep and seed.
    "03_hard_mining": NotebookWidgets(
        (Operate("mu", shows="mu {value}", changes=r"L_ins term ([\d.]+)"),),
        monitors=lambda parameters: len(names(parameters["mus"])) * n_seeds(parameters),
    ),
    # The notebook's own parsing explorer: the plot's title names the setting; two SCWM runs monitored.
    "04_part_parsing": NotebookWidgets(
        (
            Operate("l (parts)"),
            Operate("eta"),
            Operate("foreground correction", "checkbox"),
            Operate("space correction", "checkbox"),
        ),
        monitors=2,
    ),
    # No control; per seed, one monitor per memory update trained ("weighted" always) and one for PPLR stripes.
    "05_weighted_memory": NotebookWidgets(
        (), monitors=lambda parameters: (len(set(names(parameters["updates"])) | {"weighted"}) + 1) * n_seeds(parameters)
    ),
    # reidlab.lab.toy.CameraToy; one monitor per method and seed trained.
    "06_domains_and_cameras": NotebookWidgets(
        (
            Operate("crosscam_weight", shows="crosscam_weight {value}", changes=r"inter ([\d.]+), \d+ hard"),
            Operate("crosscam_negatives", shows="crosscam_negatives {value}", changes=r"(\d+) hard negatives"),
        ),
        monitors=lambda parameters: len(names(parameters["methods"])) * n_seeds(parameters),
    ),
    # One monitor on the run.
    "train_one_run": NotebookWidgets((), monitors=1),
}
# Parameters that shorten the runs beyond tests/regression.py's tiny ones: one trained run where a notebook
# trains several side by side (tests/test_notebooks_run.py runs them all; here only their widgets count).
BROWSER_PARAMETERS = {
    "02_memory_banks": {"methods": "cluster_contrast", "seeds": "0"},
    "03_hard_mining": {"mus": "0.5", "seeds": "0"},
    "05_weighted_memory": {"updates": "weighted", "seeds": "0"},
    "06_domains_and_cameras": {"methods": "cluster_contrast,cap"},
}


def names(text: str) -> list[str]:
    """The names of a comma-separated notebook parameter (``"spcl, cluster_contrast"``)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def n_seeds(parameters: dict[str, Any]) -> int:
    """How many training seeds a run with these parameters trains (its ``seeds``; None: the scale's default)."""
    return len(parse_seeds(parameters["seeds"], parameters["scale"]))


def notebook_parameters(path: Path, injected: dict[str, Any]) -> dict[str, Any]:
    """The parameters a run of ``path`` uses: the defaults of its ``parameters`` cell, then ``injected``."""
    import papermill

    defaults = {name: ast.literal_eval(info["default"]) for name, info in papermill.inspect_notebook(str(path)).items()}
    return {**defaults, **injected}


# Code that puts a widget in a notebook: such a notebook must have an entry above.
WIDGET_CODE = re.compile(r"\bipywidgets\b|\.widget\(\)|\binteract(ive)?\(")


def browser_missing(reason: str) -> None:
    """Skip (a user's machine) or fail (CI, ``REIDLAB_REQUIRE_BROWSER=1``) for a missing browser tool."""
    if os.environ.get("REIDLAB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (REIDLAB_REQUIRE_BROWSER=1: the browser tests must run here)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """One headless Chromium for the module; quits even when a test fails."""
    if importlib.util.find_spec("selenium") is None:
        browser_missing("the browser tests need the pip package `selenium` (pyproject's dev extra)")
    try:
        find_browser()
    except FileNotFoundError as error:
        browser_missing(str(error))
    folder = tmp_path_factory.mktemp("chromium")
    driver = start_chromium(folder / "profile", folder / "chromedriver.log")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def lab_server(chromium, tmp_path_factory):
    """One JupyterLab for the module, serving a temporary folder; always stopped.

    Its kernels run single-threaded (as the notebook tests' do) with a data folder of their own, where
    the first notebook that needs the scale's start model trains and caches it for the others.
    """
    folder = tmp_path_factory.mktemp("jupyterlab")
    environment = {**KERNEL_ENVIRONMENT, "REIDLAB_DATA": str(folder / "data")}
    server = JupyterLabServer(folder / "root", folder / "home", environment=environment)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def opened(page: NotebookPage):
    """Open the notebook; on failure keep a screenshot; always shut its kernel down."""
    try:
        page.open()
        yield page
    except Exception:
        with contextlib.suppress(Exception):  # keep the original error if the browser is gone too
            page.screenshot("failure")
        raise
    finally:
        with contextlib.suppress(Exception):
            page.close()


def check_move(page: NotebookPage, spec: Operate) -> list[str]:
    """Operate ``spec``'s control and return what went wrong (nothing: the output followed the control)."""
    move = page.move(spec.label, option=spec.option)
    problems = []
    if move.control.kind != spec.kind:
        problems.append(f"is a {move.control.kind}, expected a {spec.kind}")
    if spec.kind != "button" and move.value_after == move.value_before:
        problems.append(f"did not move: {move.action}, it still reads {move.readout_after}")
    if not move.before.loaded or not move.after.loaded:
        problems.append(f"its output shows no loaded image (before: {move.before.images}, after: {move.after.images})")
    if not move.output_changed:
        problems.append(f"{move.action} ({move.readout_before} -> {move.readout_after}) left its output unchanged: "
                        f"{move.after.text!r}, images {move.after.images}")
    if spec.shows is not None:
        expected = spec.shows.format(value=move.readout_after)
        if expected not in move.after.text:
            problems.append(f"after {move.action} its output should show {expected!r}, it shows {move.after.text!r}")
    if spec.changes is not None:
        found = [re.search(spec.changes, snap.text) for snap in (move.before, move.after)]
        if not all(found):
            problems.append(f"{spec.changes!r} not found in its output: {move.before.text!r} / {move.after.text!r}")
        elif found[0].group(1) == found[1].group(1):
            problems.append(f"{spec.changes!r} reads {found[0].group(1)} before and after {move.action}")
    record = {"control": spec.label, "kind": move.control.kind, "action": move.action,
              "readout": [move.readout_before, move.readout_after], "text": [move.before.text, move.after.text],
              "images": [move.before.images, move.after.images], "problems": problems,
              "screenshots": [p.name for p in move.screenshots]}
    with open(ARTIFACTS / f"{Path(page.name).stem}-moves.txt", "a") as log:
        log.write(json.dumps(record) + "\n")
    return [f"{spec.kind} {spec.label!r}: {problem}" for problem in problems]


# ---------------------------------------------------------------- the machinery, on a probe notebook

PROBE_SOURCE = '''\
import io
import time

import ipywidgets as widgets
from matplotlib.figure import Figure

style = {"description_width": "initial"}
controls = {
    "n": widgets.IntSlider(value=3, min=0, max=10, description="n", continuous_update=False),
    "x": widgets.FloatSlider(value=0.6, min=0.3, max=0.9, step=0.01, description="x", readout_format=".2f"),
    "tau": widgets.FloatLogSlider(value=0.05, base=10, min=-2, max=0, step=0.05, description="tau",
                                  readout_format=".3f", style=style),
    "kind": widgets.Dropdown(options=["mean", "hard", "hybrid"], value="mean", description="kind"),
    "flag": widgets.Checkbox(value=True, description="flag"),
}
button = widgets.Button(description="again")
clicks = 0
summary = widgets.HTML()
picture = widgets.Image(format="png")
printed = widgets.Output()


def show(change=None):
    if change is not None:
        time.sleep(1.0)  # a slow kernel: the page must wait for the answer
    values = {name: control.value for name, control in controls.items()}
    line = (f"clusters: {round(10 * values['x'])} | n {values['n']} | x {values['x']:.2f} | tau {values['tau']:.3f} | "
            f"kind {values['kind']} | flag {values['flag']} | clicks {clicks}")
    summary.value = line
    fig = Figure(figsize=(4, 0.5))
    fig.text(0.02, 0.3, line, fontsize=6)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    picture.value = buffer.getvalue()
    printed.outputs = ({"output_type": "stream", "name": "stdout", "text": line + "\\n"},)


def click(_):
    global clicks
    clicks += 1
    show(True)


for control in controls.values():
    control.observe(show, names="value")
button.on_click(click)
show()
widgets.VBox([widgets.HBox([controls["n"], controls["x"], controls["tau"]]),
              widgets.HBox([controls["kind"], controls["flag"], button]), summary, picture, printed])'''


def test_browser_operates_every_kind_of_control(lab_server, chromium):
    """Each kind of control, moved in the page, reaches the (slow) kernel, and the page sees its answer."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.cells = [nbformat.v4.new_markdown_cell("# Browser probe"), nbformat.v4.new_code_cell(PROBE_SOURCE)]
    nbformat.write(notebook, lab_server.root_dir / "probe.ipynb")
    page = NotebookPage(chromium, lab_server, "probe.ipynb", ARTIFACTS)

    with opened(page):
        page.run_all()
        assert sorted((c.kind, c.label) for c in page.controls()) == [
            ("button", "again"), ("checkbox", "flag"), ("dropdown", "kind"), ("slider", "n"), ("slider", "tau"),
            ("slider", "x"),
        ]
        with pytest.raises(BrowserTestError, match=r"controls on the page: \[\('button', 'again'\)"):
            page.control("no such slider", timeout=0.5)
        moves = [page.move("x"), page.move("n"), page.move("tau"), page.move("kind", option="hybrid"),
                 page.move("flag"), page.move("again")]

    first = moves[0].before
    assert first.texts[0] == "clusters: 6 | n 3 | x 0.60 | tau 0.050 | kind mean | flag True | clicks 0"
    assert first.texts[1] == first.texts[0] and first.loaded and len(first.images) == 1
    # x: equal distance to both ends, so End; n: End (7 steps away vs 3); tau: End (10^0).
    assert [(m.readout_before, m.readout_after) for m in moves[:3]] == [("0.60", "0.90"), ("3", "10"), ("0.050", "1.000")]
    assert (moves[0].value_after, moves[1].value_after, moves[2].value_after) == (0.9, 10, 0.0)  # tau: the exponent
    assert [m.action for m in moves] == ["pressed End"] * 3 + ["selected 'hybrid'", "clicked", "clicked"]
    assert (moves[3].value_after, moves[4].value_after) == ("hybrid", False)
    expected = [
        "clusters: 9 | n 3 | x 0.90 | tau 0.050 | kind mean | flag True | clicks 0",
        "clusters: 9 | n 10 | x 0.90 | tau 0.050 | kind mean | flag True | clicks 0",
        "clusters: 9 | n 10 | x 0.90 | tau 1.000 | kind mean | flag True | clicks 0",
        "clusters: 9 | n 10 | x 0.90 | tau 1.000 | kind hybrid | flag True | clicks 0",
        "clusters: 9 | n 10 | x 0.90 | tau 1.000 | kind hybrid | flag False | clicks 0",
        "clusters: 9 | n 10 | x 0.90 | tau 1.000 | kind hybrid | flag False | clicks 1",
    ]
    assert [m.after.texts for m in moves] == [(line, line) for line in expected]
    digests = [first.images[0][0]] + [m.after.images[0][0] for m in moves]
    assert len(set(digests)) == len(digests)  # every answer drew a new picture
    assert all(m.before == previous.after for previous, m in itertools.pairwise(moves))
    assert all(path.is_file() for m in moves for path in m.screenshots)


# ---------------------------------------------------------------- the notebooks


def test_every_notebook_widget_is_listed():
    """A notebook whose code builds widgets has its controls listed in NOTEBOOK_WIDGETS (and no other does)."""
    with_widgets = set()
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        if WIDGET_CODE.search(code):
            with_widgets.add(path.stem)
    assert with_widgets == set(NOTEBOOK_WIDGETS), (
        "tests/test_browser.py must operate every notebook widget: list each notebook's controls in NOTEBOOK_WIDGETS"
    )


@pytest.mark.parametrize("stem", list(NOTEBOOK_WIDGETS))
def test_browser_notebook_widgets(stem, lab_server, chromium, tiny_synthmarket_root):
    import papermill

    source = NOTEBOOK_DIR / f"{stem}.ipynb"
    injected = {**tiny_parameters(source, tiny_synthmarket_root), **BROWSER_PARAMETERS.get(stem, {})}
    papermill.execute_notebook(
        str(source), str(lab_server.root_dir / source.name), parameters=injected,
        prepare_only=True, kernel_name="python3", progress_bar=False,
    )
    (ARTIFACTS / f"{stem}-moves.txt").unlink(missing_ok=True)
    expected = NOTEBOOK_WIDGETS[stem]
    n_monitors = expected.monitors
    if callable(n_monitors):
        n_monitors = n_monitors(notebook_parameters(source, injected))
    page = NotebookPage(chromium, lab_server, source.name, ARTIFACTS)
    problems = []
    with opened(page):
        page.run_all(timeout=420)
        on_page = sorted((c.kind, c.label) for c in page.controls())
        listed = sorted((spec.kind, spec.label) for spec in expected.controls)
        assert on_page == listed, (
            f"the controls of {stem} in the browser {on_page} differ from those NOTEBOOK_WIDGETS lists {listed}"
        )
        for spec in expected.controls:
            problems += check_move(page, spec)
        monitors = page.summaries(MONITOR_SUMMARY_CLASS)
        toys = page.summaries(TOY_SUMMARY_CLASS)
        if monitors:
            page.show(f".{MONITOR_SUMMARY_CLASS}")
            page.screenshot("monitor")

    assert not problems, f"{stem}: widgets that did not answer in the browser:\n" + "\n".join(problems)
    assert len(monitors) == n_monitors, f"{stem}: {len(monitors)} training monitors shown, {n_monitors} expected: {monitors}"
    for text, images in monitors:
        assert re.match(r"epoch \d+ \| loss ", text) and images == 1, f"{stem}: a monitor shows {text!r}, {images} plots"
    assert all(images == 1 for _, images in toys), toys
