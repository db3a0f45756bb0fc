"""Shared fixtures: one tiny SynthMarket per test session, generated data kept out of the checkout."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def reidlab_data_dir(tmp_path_factory):
    """Point REIDLAB_DATA (generated datasets, cached pretrained weights) at a session folder.

    Notebooks executed by papermill inherit the variable, so tests never write into ``data/``.
    """
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("reidlab-data")
    mp.setenv("REIDLAB_DATA", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="session")
def tiny_synthmarket_root(tmp_path_factory):
    """A tiny SynthMarket generated once per session (seconds)."""
    from reidlab.data import generate_synthmarket

    return generate_synthmarket(tmp_path_factory.mktemp("data") / "synthmarket-tiny", preset="tiny", seed=0, progress=False)


@pytest.fixture(scope="session")
def tiny_synthmarket(tiny_synthmarket_root):
    from reidlab.data import load_dataset

    return load_dataset("synthmarket", tiny_synthmarket_root)
