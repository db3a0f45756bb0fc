import json
import os

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook, new_output

from reidlab.config import NOTEBOOK_DIR, check_scale
from reidlab.data import prepare_dataset
from reidlab.lab import notebook
from reidlab.lab.notebook import METRICS_MIME, read_metrics, record, run_notebook


def test_recorded_values_become_plain_json():
    values = notebook._plain({"mAP": np.float32(0.25), "cmc": np.array([0.5, 1.0]), "n": torch.tensor(3),
                              "name": "x", "nan": float("nan")})
    assert values == {"mAP": 0.25, "cmc": [0.5, 1.0], "n": 3, "name": "x", "nan": None}
    json.dumps(values)
    assert record(mAP=0.5) is None  # outside IPython: checked, nothing displayed
    with pytest.raises(TypeError, match="cannot record object"):
        record(bad=object())


def test_read_metrics_merges_outputs_in_order(tmp_path):
    def output(values):
        return new_output("display_data", data={METRICS_MIME: values, "text/plain": "recorded"})

    nb = new_notebook(cells=[
        new_code_cell("a", outputs=[output({"a": 1, "b": 2})]),
        new_code_cell("b", outputs=[new_output("stream", name="stdout", text="hi"), output({"b": 3})]),
    ])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    assert read_metrics(path) == {"a": 1, "b": 3}


def test_run_notebook_injects_parameters_and_reads_metrics(tmp_path):
    params = new_code_cell("scale = 'lab'\nvalue = 1")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell("from reidlab.lab.notebook import record\nrecord(scale=scale, doubled=2 * value)")],
                      metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    source = tmp_path / "src" / "01_probe.ipynb"
    source.parent.mkdir()
    nbformat.write(nb, str(source))
    run = run_notebook(source, tmp_path / "out" / "01_probe.ipynb", {"scale": "tiny", "value": 21}, progress=False)
    assert run.metrics == {"scale": "tiny", "doubled": 42}
    assert run.output.is_file() and run.seconds > 0


def test_scale_and_dataset_errors():
    with pytest.raises(ValueError, match="scale must be one of .* got 'huge'"):
        check_scale("huge")
    with pytest.raises(ValueError, match="needs its root folder"):
        prepare_dataset("market1501", None)


def test_notebook_prefix_selection(tmp_path):
    with pytest.raises(ValueError, match="no notebook matches '99'"):
        notebook.run_notebooks(tmp_path, scale="tiny", notebooks=["99"])
    names = [p.name for p in notebook.list_notebooks()]
    assert names == sorted(names) and names[0].startswith("00_")


def test_format_summary():
    run = notebook.NotebookRun(NOTEBOOK_DIR / "00_x.ipynb", NOTEBOOK_DIR / "out.ipynb", 3.0,
                               {"mAP": 0.123456, "n": 5, "losses": [1, 2]})
    text = notebook.format_summary([run])
    assert "00_x.ipynb" in text and "0.1235" in text and "losses" not in text


def probe_notebook(folder):
    params = new_code_cell("scale = 'lab'\nvalue = 1")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell("from reidlab.lab.notebook import record\nrecord(doubled=2 * value)")],
                      metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    path = folder / "07_probe.ipynb"
    folder.mkdir(exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def test_run_notebooks_skips_what_it_executed_with_the_same_signature(tmp_path, capfd):
    source, out = probe_notebook(tmp_path / "src"), tmp_path / "out"
    lines = []
    first = notebook.run_notebooks(out, scale="tiny", notebooks=[source], parameters={"value": 2}, progress=False,
                                   report=lines.append)
    assert not first[0].skipped and first[0].metrics == {"doubled": 4}
    assert "TCP without encryption" not in capfd.readouterr().err  # the kernel talks over IPC
    again = notebook.run_notebooks(out, scale="tiny", notebooks=[source], parameters={"value": 2}, progress=False,
                                   report=lines.append)
    assert again[0].skipped and again[0].metrics == {"doubled": 4}
    other = notebook.run_notebooks(out, scale="tiny", notebooks=[source], parameters={"value": 5}, progress=False,
                                   report=lines.append)
    assert not other[0].skipped and other[0].metrics == {"doubled": 10}
    assert "running at tiny" in lines[0] and "done in" in lines[1]
    assert "skipped, already executed with the same parameters" in lines[2] and "running at tiny" in lines[3]
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["07_probe.ipynb"]["signature"]["parameters"] == {"scale": "tiny", "value": 5}
    assert "total:" in notebook.format_summary(other)
    # Optional parameters (reidlab demo --seeds) reach only the notebooks that declare them.
    optional = notebook.run_notebooks(out, scale="tiny", notebooks=[source], parameters={"value": 5},
                                      optional={"value": 6, "seeds": "0"}, progress=False, report=lines.append)
    assert not optional[0].skipped and optional[0].metrics == {"doubled": 12}


def test_run_notebooks_keeps_what_another_run_wrote_into_the_same_folder(tmp_path, monkeypatch):
    source, out = probe_notebook(tmp_path / "src"), tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text(json.dumps({"00_old.ipynb": {"seconds": 1.0}}))

    def other_demo_finishes_meanwhile(notebook_path, output, params, progress=True):
        # A second `reidlab demo` with the same out folder writes its notebook's entry while this one runs.
        summary = json.loads((out / "metrics.json").read_text())
        (out / "metrics.json").write_text(json.dumps({**summary, "03_other.ipynb": {"seconds": 2.0}}))
        output.write_text("{}")
        return notebook.NotebookRun(notebook_path, output, 3.0, {"doubled": 4})

    monkeypatch.setattr(notebook, "run_notebook", other_demo_finishes_meanwhile)
    notebook.run_notebooks(out, scale="tiny", notebooks=[source], progress=False, report=lambda line: None)
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["00_old.ipynb"] == {"seconds": 1.0} and summary["03_other.ipynb"] == {"seconds": 2.0}
    assert summary["07_probe.ipynb"]["doubled"] == 4 and summary["07_probe.ipynb"]["seconds"] == 3.0
    assert sorted(p.name for p in out.iterdir()) == ["07_probe.ipynb", "metrics.json"]  # no temporary file left


def test_injected_parameters_are_checked_against_the_declared_ones(tmp_path):
    source = probe_notebook(tmp_path)
    with pytest.raises(ValueError, match="07_probe.ipynb has no parameter 'valeu'; its parameters: scale, value"):
        notebook.run_notebook(source, tmp_path / "out.ipynb", {"valeu": 3}, progress=False)


def test_check_claim_states_a_result_or_warns(capsys):
    assert notebook.check_claim(True, "A is above B", "3 vs 2") is True
    assert capsys.readouterr().out == "OK: A is above B (3 vs 2)\n"
    assert notebook.check_claim(False, "A is above B", "1 vs 2") is False
    assert capsys.readouterr().out == 'WARNING: this run contradicts the claim "A is above B" (1 vs 2)\n'


def test_scale_banner_says_what_tiny_numbers_mean(capsys):
    notebook.scale_banner("tiny")
    out = capsys.readouterr().out
    assert "only prove that the code runs" in " ".join(out.split())
    assert max(len(line) for line in out.splitlines()) == 100  # wrapped inside its rules, not by the browser
    notebook.scale_banner("full")
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError):
        notebook.scale_banner("huge")


def test_parse_seeds():
    assert notebook.parse_seeds(None, "lab") == [0, 1, 2]
    assert notebook.parse_seeds(None, "tiny") == [0]
    assert notebook.parse_seeds(" 3, 1 ,", "tiny") == [3, 1]
    for bad, words in (("", "names no seed"), ("0,a", "comma-separated integers"), ("1,1", "repeats a seed")):
        with pytest.raises(ValueError, match=words):
            notebook.parse_seeds(bad, "lab")


def timed_probe(folder, name, minutes, body="record(doubled=2 * value)"):
    """A probe notebook that declares its lab time and records what its kernel saw."""
    path = probe_notebook(folder).rename(folder / name)
    nb = nbformat.read(str(path), as_version=4)
    nb.metadata["reidlab"] = {"expected_minutes": {"lab": minutes}}
    nb.cells[1].source = f"import os\nfrom reidlab.lab.notebook import record\n{body}"
    nbformat.write(nb, str(path))
    return path


def test_run_notebooks_side_by_side_longest_first_cores_shared_and_a_failure_raised_after_the_others(tmp_path,
                                                                                                monkeypatch):
    import papermill

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    folder, out = tmp_path / "src", tmp_path / "out"
    folder.mkdir()
    body = "record(doubled=2 * value, threads=os.environ.get('OMP_NUM_THREADS'))"
    sources = [timed_probe(folder, "00_fails.ipynb", 2.0, "raise RuntimeError('broken on purpose')"),
               timed_probe(folder, "01_long.ipynb", 3.0, body), timed_probe(folder, "02_short.ipynb", 1.0, body)]
    assert notebook.expected_seconds(sources[1], "lab") == 180.0 and notebook.expected_seconds(sources[1], "tiny") is None
    lines = []
    with pytest.raises(papermill.PapermillExecutionError, match="broken on purpose"):
        notebook.run_notebooks(out, scale="lab", notebooks=sources, parameters={"value": 4}, jobs=2, report=lines.append)
    assert lines[0].startswith("3 notebooks, 2 at a time")
    started = [line.split("]")[1].split(":")[0].strip() for line in lines if ": running at lab scale" in line]
    assert started[:2] == ["01_long.ipynb", "00_fails.ipynb"]  # 3 min, then 2 min: the longest first
    assert "about 3 min in the README's make demo" in next(line for line in lines if "01_long.ipynb: running" in line)
    assert "00_fails.ipynb: failed (PapermillExecutionError)" in "\n".join(lines)
    summary = json.loads((out / "metrics.json").read_text())
    # The one running beside the failure finished and was recorded; the failed one was not.
    assert "00_fails.ipynb" not in summary and summary["01_long.ipynb"]["doubled"] == 8
    assert summary["01_long.ipynb"]["threads"] == str(max(1, (os.cpu_count() or 1) // 2))
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        notebook.run_notebooks(out, scale="lab", notebooks=sources[1:], jobs=0)
    # One notebook left still runs on the threads it would have beside another; an empty export is no limit.
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    lines.clear()
    notebook.run_notebooks(out, scale="lab", notebooks=sources[2:], parameters={"value": 5}, jobs=2,
                           skip_done=False, report=lines.append)
    assert lines[0] == f"1 notebook, on {notebook.kernel_threads(2)} thread{'s' * (notebook.kernel_threads(2) > 1)}: its share of the cores with 2 at a time"
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["02_short.ipynb"]["doubled"] == 10
    assert summary["02_short.ipynb"]["threads"] == str(notebook.kernel_threads(2))
