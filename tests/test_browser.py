"""The clustering notebook's eps explorer in a real browser: JupyterLab + headless Chromium (Selenium).

The flow is the same for both tests: open the notebook in JupyterLab, Run All Cells, read the
``clusters: <N>`` summary of the explorer, move the eps slider to its far end with the keyboard and
check that the kernel answered with a different count. Screenshots before and after the move (and at a
failure) go to ``artifacts/browser/``. Needs the apt packages ``chromium chromium-driver`` and the pip
package ``selenium``. Without them the tests are skipped with the reason, except where the environment
sets ``REIDLAB_REQUIRE_BROWSER=1`` (``.ci/run`` does): there they fail, so CI can never pass without them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from pathlib import Path

import nbformat
import pytest
from browser import JupyterLabServer, NotebookPage, find_browser, start_chromium

from reidlab.config import NOTEBOOK_DIR

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
CLUSTERING_NOTEBOOK = NOTEBOOK_DIR / "01_clustering.ipynb"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """One JupyterLab for the module, serving a temporary folder; always stopped."""
    folder = tmp_path_factory.mktemp("jupyterlab")
    server = JupyterLabServer(folder / "root", folder / "home")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def browser_missing(reason: str) -> None:
    """Skip (a user's machine) or fail (CI, ``REIDLAB_REQUIRE_BROWSER=1``) for a missing browser tool."""
    if os.environ.get("REIDLAB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (REIDLAB_REQUIRE_BROWSER=1: the browser tests must run here)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def chromium(tmp_path):
    """A fresh headless Chromium profile per test; quits even when the test fails."""
    if importlib.util.find_spec("selenium") is None:
        browser_missing("the browser tests need the pip package `selenium` (pyproject's dev extra)")
    try:
        find_browser()
    except FileNotFoundError as error:
        browser_missing(str(error))
    driver = start_chromium(tmp_path / "chromium-profile", tmp_path / "chromedriver.log")
    try:
        yield driver
    finally:
        driver.quit()


def move_eps(page: NotebookPage) -> tuple[tuple[float, int], tuple[float, int]]:
    """Run the notebook, then move eps to the end of its slider farther from the start value.

    Returns:
        ``(eps, clusters)`` shown before and after the move.
    """
    from selenium.webdriver.common.keys import Keys

    try:
        page.open()
        page.run_all()
        handle, summary = page.explorer()
        eps_before, low, high = page.eps(handle)
        count_before = page.cluster_count(summary)
        page.screenshot("before")
        page.press(handle, Keys.END if high - eps_before >= eps_before - low else Keys.HOME)
        handle, summary = page.explorer()  # found again, in case a view was re-rendered
        eps_after, count_after = page.eps(handle)[0], page.cluster_count(summary)
        page.screenshot("after")
    except Exception:
        with contextlib.suppress(Exception):  # keep the original error if the browser is gone too
            page.screenshot("failure")
        raise
    return (eps_before, count_before), (eps_after, count_after)


def write_probe_notebook(path: Path) -> Path:
    """A one-cell notebook with the explorer's DOM contract: an eps FloatSlider and a ``clusters: <N>`` HTML.

    The count is ``round(10 * eps)``, and the kernel takes a second to answer, so a test that read the
    page before the kernel's update had arrived would see the old count.
    """
    source = '''\
import time
import ipywidgets as widgets

eps_slider = widgets.FloatSlider(value=0.6, min=0.3, max=0.9, step=0.01, description="eps", readout_format=".2f")
summary = widgets.HTML()
eps_slider.add_class("reidlab-eps-slider")
summary.add_class("reidlab-cluster-summary")

def show(change=None):
    if change is not None:
        time.sleep(1.0)
    summary.value = f"clusters: {round(10 * eps_slider.value)} | eps {eps_slider.value:.2f}"

eps_slider.observe(show, names="value")
show()
widgets.VBox([widgets.HBox([eps_slider]), summary])'''
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.cells = [nbformat.v4.new_markdown_cell("# Browser probe"), nbformat.v4.new_code_cell(source)]
    nbformat.write(notebook, path)
    return path


def test_browser_probe_widget(lab_server, chromium):
    write_probe_notebook(lab_server.root_dir / "probe.ipynb")
    page = NotebookPage(chromium, lab_server, "probe.ipynb", ARTIFACTS)

    (eps_before, count_before), (eps_after, count_after) = move_eps(page)

    assert (eps_before, count_before) == (0.6, 6)
    # Equal distance to both ends: the move goes to the maximum, and the kernel's count follows it.
    assert eps_after == 0.9
    assert count_after == 9


def test_browser_clustering_notebook(lab_server, chromium, tiny_synthmarket_root):
    import papermill

    papermill.execute_notebook(
        str(CLUSTERING_NOTEBOOK), str(lab_server.root_dir / CLUSTERING_NOTEBOOK.name),
        parameters={"scale": "tiny", "data_root": str(tiny_synthmarket_root)},
        prepare_only=True, kernel_name="python3", progress_bar=False,
    )
    page = NotebookPage(chromium, lab_server, CLUSTERING_NOTEBOOK.name, ARTIFACTS)

    (eps_before, count_before), (eps_after, count_after) = move_eps(page)

    assert eps_after != eps_before, f"the eps slider did not move from {eps_before}"
    assert count_after != count_before, (
        f"moving eps from {eps_before} to {eps_after} left the shown cluster count at {count_before}"
    )
