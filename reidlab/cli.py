"""The ``reidlab`` command (also ``python -m reidlab``).

``reidlab demo --scale lab --out runs/lab`` generates SynthMarket if needed, executes every notebook with
papermill at that scale and prints the recorded metrics (what ``make demo`` runs).

``reidlab reproduce EXPERIMENT... --scale tiny|lab|full`` trains the named experiments (the papers' main
table, HHCL's mu sweep, SCWM's ablations, Cluster Contrast's mean vs hard update) by executing
``notebooks/train_one_run.ipynb`` once per run, resumes interrupted runs, and writes a results table next
to the papers' numbers (:mod:`reidlab.reproduce`). ``reidlab reproduce --list`` names the experiments.
"""

from __future__ import annotations

import argparse
import functools
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


def _reproduce(args: argparse.Namespace) -> int:
    from reidlab import reproduce

    if args.list:
        print(reproduce.format_experiments())
        return 0
    if not args.experiments:
        if args.table:
            return _print_table(args.results)
        raise ValueError(f"name at least one experiment ({', '.join(reproduce.EXPERIMENTS)} or all), "
                         f"or use --list or --table")
    datasets = [name.strip() for item in args.dataset or [] for name in item.split(",") if name.strip()] or None
    runs = reproduce.plan_experiments(args.experiments, scale=args.scale, datasets=datasets)
    if args.dry_run:
        print(reproduce.format_plan(runs, results=args.results, data_root=args.data_root, seed=args.seed))
        return 0
    reproduce.check_datasets(runs, args.data_root)
    try:
        outcomes = reproduce.run_experiments(runs, results=args.results, data_root=args.data_root, seed=args.seed,
                                             report=functools.partial(print, flush=True))
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume (finished runs are skipped, the "
              "interrupted one continues after its last finished epoch)", file=sys.stderr)
        return 130
    _print_table(args.results)
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    if failed:
        names = ", ".join(f"{o.run.experiment}/{o.run.scale}/{o.run.label}" for o in failed)
        print(f"reidlab: error: {len(failed)} of {len(outcomes)} runs failed ({names}); their notebook.ipynb "
              f"shows the traceback", file=sys.stderr)
        return 1
    return 0


def _print_table(results: str) -> int:
    from reidlab.reproduce import write_table

    paths = write_table(results)
    print(f"\nresults table: {', '.join(str(p) for p in paths)}")
    return 0


def _parser() -> argparse.ArgumentParser:
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
    demo.set_defaults(handler=_demo)

    rep = sub.add_parser(
        "reproduce", help="train named experiments (the papers' tables) and tabulate them next to the papers",
        description="Train the named experiments by executing notebooks/train_one_run.ipynb once per run; "
                    "finished runs are skipped and interrupted ones resumed. See --list.",
    )
    rep.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help="experiment names (see --list), or all")
    rep.add_argument("--scale", choices=SCALES, default="lab",
                     help="tiny (seconds), lab (CPU minutes, SynthMarket) or full (the papers' settings, GPU)")
    rep.add_argument("--dataset", action="append", metavar="NAME",
                     help="only the runs on these paper datasets (market1501, dukemtmcreid, msmt17; repeat or "
                          "comma-separate); full scale only: lab and tiny scale train on SynthMarket")
    rep.add_argument("--data-root", default=None, metavar="DIR",
                     help="full scale: the folder holding Market-1501-v15.09.15/, DukeMTMC-reID/, MSMT17_V1/ or "
                          "MSMT17_V2/; lab/tiny scale: a SynthMarket folder (default: generated under data/)")
    rep.add_argument("--results", default="results", metavar="DIR", help="results folder (default results/)")
    rep.add_argument("--seed", type=int, default=0, help="training seed of every run (default 0)")
    rep.add_argument("--list", action="store_true", help="list the experiments and exit")
    rep.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    rep.add_argument("--table", action="store_true",
                     help="write results.md/.html/.png from the finished runs (also done after every run)")
    rep.set_defaults(handler=_reproduce)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("reidlab").setLevel(logging.INFO)  # reidlab's progress; other libraries' warnings only
    try:
        return args.handler(args)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"reidlab: error: {err}", file=sys.stderr)
        return 2
