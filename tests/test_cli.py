"""The ``reidlab`` command: sub-commands, help, version, exit statuses and one-line errors."""

import re
import subprocess
import sys

import pytest

from reidlab import __version__
from reidlab.cli import _parser, main

SUBCOMMANDS = ("demo", "reproduce", "train", "data", "lab")


def test_version_and_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"reidlab {__version__}"
    choices = next(a for a in _parser()._actions if a.dest == "command").choices
    assert tuple(choices) == SUBCOMMANDS


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_is_plain_text_with_a_line_for_every_option(command):
    sub = next(a for a in _parser()._actions if a.dest == "command").choices[command]
    text = sub.format_help()
    assert "``" not in text and ":class:" not in text and ":func:" not in text  # no reStructuredText
    for action in sub._actions:
        assert action.help, f"reidlab {command} {action.option_strings or action.dest} has no help line"


def test_usage_errors_exit_2_with_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--method", "nope", "--run-dir", str(tmp_path)])
    assert exit_.value.code == 2  # argparse's own usage error
    capsys.readouterr()
    assert main(["train", "--method", "hhcl", "--run-dir", str(tmp_path), "--set", "epoch=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reidlab train: error: unknown TrainConfig field 'epoch'") and err.count("\n") == 1
    assert main(["train", "--method", "hhcl", "--scale", "tiny", "--run-dir", str(tmp_path),
                 "--set", "mu=1.5"]) == 2
    assert "TrainConfig.mu must be a number in [0, 1], got 1.5" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was written
    with pytest.raises(SystemExit) as exit_:  # demo --seeds is checked before any data is generated
        main(["demo", "--scale", "tiny", "--seeds", "0,0", "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2 and "seeds repeats a seed" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--scale", "tiny", "--jobs", "0", "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2 and "--jobs: expected an integer >= 1, got 0" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_runtime_errors_exit_1_with_one_line_and_debug_shows_the_traceback(capsys, tmp_path):
    argv = ["train", "--method", "cluster_contrast", "--dataset", "market1501", "--data-root", str(tmp_path),
            "--run-dir", str(tmp_path / "run")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("reidlab train: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "Market-1501" in err
    with pytest.raises(FileNotFoundError):
        main(["--debug", *argv])
    with pytest.raises(FileNotFoundError):
        main([*argv, "--debug"])  # after the sub-command too


def test_data_generates_and_describes(tmp_path, capsys):
    root = tmp_path / "sm"
    assert main(["data", "--root", str(root), "--preset", "tiny", "--workers", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"bounding_box_train\s+\d+ images", out) and str(root) in out


def test_module_entry_points_are_the_command():
    for module, command in (("reidlab", []), ("reidlab.train", ["train"]), ("reidlab.data.synthmarket", ["data"])):
        done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"usage: reidlab {' '.join(command)}".rstrip())


def test_lab_adds_allow_root_for_root(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("reidlab.cli.subprocess.call", lambda command: calls.append(command) or 0)
    monkeypatch.setattr("reidlab.cli.os.geteuid", lambda: 0)
    assert main(["lab", "--no-browser", "--port", "8899"]) == 0
    assert calls[0][1:4] == ["-m", "jupyter", "lab"] and "--allow-root" in calls[0] and "--port=8899" in calls[0]
    assert "--allow-root" in capsys.readouterr().err
    monkeypatch.setattr("reidlab.cli.os.geteuid", lambda: 1000)
    main(["lab"])
    assert "--allow-root" not in calls[1]


def test_missing_faiss_names_the_extra(monkeypatch):
    import builtins
    import importlib

    import reidlab.cluster.neighbors as neighbors

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    try:
        with pytest.raises(ImportError, match=r"pip install -e '\.\[cpu\]'"):
            importlib.reload(neighbors)
    finally:
        monkeypatch.setattr(builtins, "__import__", real_import)
        importlib.reload(neighbors)
