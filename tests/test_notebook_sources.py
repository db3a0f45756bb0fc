"""The committed notebooks: no outputs, a tagged parameters cell, and only the functions a notebook may define.

Notebooks compose library calls. A notebook may define a naive version of what it teaches (compared with
the library's result in the same notebook), a small plotting or widget helper, or a training callback;
every other function belongs in the library. :data:`ALLOWED` lists each function defined in a notebook
cell with its kind: a new one fails until it is moved into the library or listed here with a reason.
"""

import ast

import nbformat
import pytest

from reidlab.config import NOTEBOOK_DIR
from reidlab.lab.notebook import expected_seconds, list_notebooks

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
ALLOWED = {
    "01_clustering": {"naive_jaccard": "naive", "reciprocal": "naive"},
    "04_part_parsing": {
        "picture": "plot",  # the image at the network's input size, under its masks
        "within_class_ss": "naive",  # the K-means objective, to compare Lloyd's and the exact 1-D K-means
        "naive_parts": "naive",  # Eq. 2 + scikit-learn's clustering against the library's step 2
        "same_partition": "naive",  # compares the naive and the library's partitions
        "parse_batch": "widget",
        "batch_figure": "widget",
        "refresh": "widget",
        "snapshot": "callback",  # keeps the part head's maps after every epoch (Figure 4)
    },
    "05_weighted_memory": {"knn_set": "naive", "extremes": "plot"},
}


def code_cells(path):
    return [cell for cell in nbformat.read(str(path), as_version=4).cells if cell.cell_type == "code"]


def python_source(cell) -> str:
    """The cell's Python, IPython magics (``%matplotlib inline``) and shell lines left out."""
    return "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    dirty = [i for i, cell in enumerate(code_cells(path)) if cell.outputs or cell.execution_count is not None]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; commit notebooks cleared"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_tagged_parameters_cell(path):
    cells = code_cells(path)
    tagged = [i for i, cell in enumerate(cells) if "parameters" in cell.metadata.get("tags", [])]
    assert tagged == [0], f"{path.name}: the first code cell, and only it, must carry the 'parameters' tag"
    for name in ("scale", "seed", "device"):
        assert f"\n{name}:" in "\n" + cells[0].source, f"{path.name}: parameters cell lacks {name!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_functions_defined_in_notebooks_are_naive_versions_or_plot_helpers(path):
    defined = [node.name for cell in code_cells(path) for node in ast.walk(ast.parse(python_source(cell)))
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    allowed = ALLOWED.get(path.stem, {})
    unexpected = sorted(set(defined) - set(allowed))
    assert not unexpected, (f"{path.name} defines {unexpected}: move pipeline steps into the library, or list a "
                            "naive version / plotting helper in tests/test_notebook_sources.py")
    assert not set(allowed) - set(defined), f"{path.name}: ALLOWED lists functions it no longer defines"


@pytest.mark.parametrize("path", list_notebooks(), ids=lambda p: p.stem)
def test_declares_its_lab_time_for_the_side_by_side_order(path):
    # reidlab demo --jobs starts the longest notebooks first on a fresh machine from this value.
    seconds = expected_seconds(path, "lab")
    assert seconds is not None and 0 < seconds < 3600, f"{path.name}: metadata reidlab.expected_minutes.lab missing"
