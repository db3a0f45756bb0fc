"""Shared fixtures: one tiny SynthMarket per test session."""

import pytest


@pytest.fixture(scope="session")
def tiny_synthmarket_root(tmp_path_factory):
    """A tiny SynthMarket generated once per session (seconds)."""
    from reidlab.data import generate_synthmarket

    return generate_synthmarket(tmp_path_factory.mktemp("data") / "synthmarket-tiny", preset="tiny", seed=0, progress=False)


@pytest.fixture(scope="session")
def tiny_synthmarket(tiny_synthmarket_root):
    from reidlab.data import load_dataset

    return load_dataset("synthmarket", tiny_synthmarket_root)
