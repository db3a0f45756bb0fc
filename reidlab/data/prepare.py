"""Loading a dataset by name, generating SynthMarket first where it is the dataset and is missing."""

from __future__ import annotations

from pathlib import Path

from reidlab.config import check_scale, default_synthmarket_root, synthmarket_preset
from reidlab.data.datasets import ReIDDataset, load_dataset
from reidlab.data.synthmarket import generate_synthmarket

__all__ = ["prepare_dataset"]


def prepare_dataset(
    dataset: str = "synthmarket",
    root: str | Path | None = None,
    *,
    scale: str = "lab",
    seed: int = 0,
    generate: bool | None = None,
    progress: bool = True,
) -> ReIDDataset:
    """Load ``dataset``, generating SynthMarket first when it is the dataset and is not there yet.

    Args:
        dataset: a name accepted by :func:`reidlab.data.load_dataset`.
        root: the dataset folder. For SynthMarket ``None`` means ``data_dir()/synthmarket`` (lab and
            full scale, preset ``default``) or ``data_dir()/synthmarket-tiny`` (tiny scale). Real datasets
            need their root.
        scale: ``"tiny"``, ``"lab"`` or ``"full"``; picks the SynthMarket preset.
        seed: SynthMarket generation seed (only used when generating).
        generate: generate a missing SynthMarket at ``root``. ``None`` (the default) generates only at the
            default root: an explicit root that does not exist is an error, so that a mistyped path is
            reported rather than silently filled with a new dataset.
        progress: show the generation progress bar.

    Returns:
        The loaded dataset.

    Raises:
        FileNotFoundError: an explicit ``root`` that does not exist (and ``generate`` is not True).
    """
    check_scale(scale)
    is_synth = dataset.lower() == "synthmarket"
    if root is None:
        if not is_synth:
            raise ValueError(
                f"dataset {dataset!r} needs its root folder (data_root=...); only 'synthmarket' is generated"
            )
        root = default_synthmarket_root(scale)
        generate = True if generate is None else generate
    if is_synth and not Path(root).exists():
        if not generate:
            raise FileNotFoundError(
                f"no SynthMarket at {root}: check the path, leave data_root unset to use (and generate) "
                f"{default_synthmarket_root(scale)}, or generate one there with `reidlab data --root {root} "
                f"--preset {synthmarket_preset(scale)}`"
            )
        generate_synthmarket(root, preset=synthmarket_preset(scale), seed=seed, progress=progress)
    return load_dataset(dataset, root)
