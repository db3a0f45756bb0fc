"""The method registry: every method is one object, the loop knows none by name, the package has no cycles."""

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from reidlab.models import build_model
from reidlab.training import METHODS, NAMED_PRESETS, Trainer, get_method, preset
from reidlab.training import methods as registry
from reidlab.training.config import SCALED_SETTINGS
from reidlab.training.stages import GlobalStage

PACKAGE = Path(__file__).resolve().parents[1] / "reidlab"
# The shared loop: none of these may name a method (TrainConfig's defaults, which are Cluster Contrast's, may).
LOOP_MODULES = ("training/trainer.py", "training/stages.py", "training/step.py", "training/parts.py",
                "training/start.py", "training/run.py", "training/domains.py", "training/cameras.py")


def test_every_method_has_presets_at_every_scale():
    for name, method in METHODS.items():
        assert method.name == name
        for scale in SCALED_SETTINGS:
            config = preset(name, scale=scale)
            assert config.method == name and config.backbone == "labnet"
        for dataset in method.datasets:
            config = preset(name, dataset=dataset)
            assert config.eps == method.datasets[dataset]["eps"]
        if method.memory_updates:
            assert preset(name, scale="tiny").memory_update == method.memory_updates[0]


def test_named_presets_are_variants_of_a_method():
    hard = preset("cluster_contrast_hard", scale="lab")
    assert (hard.method, hard.memory_update) == ("cluster_contrast", "hard")
    assert dataclasses.replace(hard, memory_update="mean") == preset("cluster_contrast", scale="lab")
    for name, (method, settings) in NAMED_PRESETS.items():
        assert method in METHODS and name not in METHODS and settings
    with pytest.raises(ValueError, match=r"'cluster_contrast_hard' is a preset: use preset\('cluster_contrast_hard'\)"):
        get_method("cluster_contrast_hard")


def _string_constants(source: str) -> set[str]:
    """The string literals of ``source``'s code (docstrings left out)."""
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings}


def test_the_loop_names_no_method():
    names = {*METHODS, *NAMED_PRESETS}
    for module in LOOP_MODULES:
        found = names & _string_constants((PACKAGE / module).read_text())
        assert not found, f"{module} names {found}: a method's choices belong in its registry entry"


def _imports(path: Path, module: str) -> set[str]:
    """The reidlab modules ``path`` imports (module level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("reidlab") and name != module}


def test_no_import_cycles():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {name: {dep for dep in _imports(path, name) if dep in modules} for name, path in modules.items()}
    # A package's __init__ re-exports its submodules: that edge is not a dependency of the package's code.
    for name in graph:
        graph[name] = {dep for dep in graph[name] if not dep.startswith(name + ".")}
    cycles = []

    def visit(node, stack, seen):
        for dep in graph[node]:
            if dep in stack:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in seen:
                seen.add(dep)
                visit(dep, stack + [dep], seen)

    for start in graph:
        visit(start, [start], {start})
    assert not cycles, f"import cycles: {cycles[:3]}"


def test_a_new_method_is_one_registry_entry(tiny_synthmarket, monkeypatch):
    """A method added to the registry trains with the unchanged loop."""
    def cluster_memory_without_momentum(inputs):
        from reidlab.memory import ClusterMemory

        return ClusterMemory.from_labels(inputs.features.global_, inputs.labels, momentum=0.0,
                                         temperature=inputs.config.temperature)

    new = dataclasses.replace(METHODS["cluster_contrast"], name="no_momentum", title="no momentum",
                              make_memory=cluster_memory_without_momentum)
    monkeypatch.setattr(registry, "METHODS", {**METHODS, "no_momentum": new})
    config = preset("no_momentum", scale="tiny", epochs=1)
    torch.manual_seed(0)
    trainer = Trainer(build_model("labnet", pretrained=False), tiny_synthmarket, config, progress=False)
    history = trainer.fit()
    assert isinstance(trainer.stage, GlobalStage) and trainer.memory.momentum == 0.0
    assert np.isfinite(history[-1]["loss"]) and history[-1]["memory_rows"] == history[-1]["n_clusters"]


def test_method_entries_are_checked():
    with pytest.raises(ValueError, match="outliers must be 'drop' or 'classes', got 'keep'"):
        dataclasses.replace(METHODS["hhcl"], outliers="keep")
    labels = np.array([0, -1, 1, -1])
    assert METHODS["spcl"].train_labels(labels).tolist() == [0, 2, 1, 3]  # outliers become classes
    assert METHODS["hhcl"].train_labels(labels).tolist() == [0, -1, 1, -1]  # dropped
