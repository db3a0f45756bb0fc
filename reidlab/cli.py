"""The ``reidlab`` command (also ``python -m reidlab``).

``reidlab demo --scale lab --out runs/lab`` generates SynthMarket if needed, executes every notebook with
papermill at that scale and prints the recorded metrics (what ``make demo`` runs).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from reidlab.notebook import SCALES, format_summary, prepare_dataset, run_notebooks


def _demo(args: argparse.Namespace) -> int:
    dataset = prepare_dataset(args.dataset, args.data_root, scale=args.scale, seed=args.data_seed)
    print(f"dataset: {dataset.name} at {dataset.root}")
    parameters = {"dataset": args.dataset, "data_root": str(dataset.root), "seed": args.seed}
    runs = run_notebooks(args.out, scale=args.scale, notebooks=args.notebooks or None, parameters=parameters)
    print()
    print(format_summary(runs))
    print(f"\nExecuted notebooks and metrics.json are in {args.out}/ (open them with `make lab`).")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="reidlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="execute the notebooks with papermill and summarise their metrics")
    demo.add_argument("--scale", choices=SCALES, default="lab")
    demo.add_argument("--out", default="runs/lab", help="folder for the executed notebooks (default runs/lab)")
    demo.add_argument("--dataset", default="synthmarket")
    demo.add_argument("--data-root", default=None, help="dataset folder (SynthMarket is generated when omitted)")
    demo.add_argument("--data-seed", type=int, default=0, help="SynthMarket generation seed")
    demo.add_argument("--seed", type=int, default=0, help="seed passed to every notebook")
    demo.add_argument("notebooks", nargs="*", help="notebook name prefixes (default: all), e.g. 00 01")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _demo(args)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"reidlab: error: {err}", file=sys.stderr)
        return 2
