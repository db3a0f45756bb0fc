"""The ``reidlab`` command (also ``python -m reidlab``): demo, reproduce, train, data and lab.

Exit status: 0 on success, 2 for a usage error (a bad option or value), 1 when the work itself fails,
130 when interrupted. An expected failure prints one line that names the problem and the fix; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from reidlab import __version__
from reidlab.config import NOTEBOOK_DIR, SCALES
from reidlab.utils import check_writable, format_duration

__all__ = ["UsageError", "main"]


class UsageError(ValueError):
    """A command-line value that cannot work (exit status 2, like argparse's own errors)."""


def _positive(text: str) -> int:
    """argparse type: an integer >= 1 (notebooks executed at once)."""
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    """argparse type: an integer >= 0 (seeds, worker counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _seed_list(text: str) -> str:
    """argparse type: comma-separated training seeds (checked by :func:`reidlab.lab.notebook.parse_seeds`)."""
    from reidlab.lab.notebook import parse_seeds

    try:
        parse_seeds(text, "lab")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


# ----------------------------------------------------------------------------- sub-commands
def _demo(args: argparse.Namespace) -> int:
    from reidlab.data import prepare_dataset
    from reidlab.lab.notebook import format_summary, run_notebooks
    from reidlab.training.shared import build_shared_models

    dataset = prepare_dataset(args.dataset, args.data_root, scale=args.scale, seed=args.data_seed)
    print(f"dataset: {dataset.name} at {dataset.root}")
    parameters = {"dataset": args.dataset, "data_root": str(dataset.root), "seed": args.seed}
    check_writable(args.out, what="output folder")
    start = time.perf_counter()
    try:
        # The start model and the supervised ceiling, trained once here with their own progress; every
        # notebook then finds them cached (the same build_shared_models call, the same cache files).
        build_shared_models(dataset, scale=args.scale, report=functools.partial(print, flush=True))
        runs = run_notebooks(args.out, scale=args.scale, notebooks=args.notebooks or None, parameters=parameters,
                             optional={"seeds": args.seeds} if args.seeds else None, skip_done=not args.rerun,
                             jobs=args.jobs, report=functools.partial(print, flush=True))
    except KeyboardInterrupt:
        print(f"\ninterrupted: run the same command again to continue (shared models cached and notebooks finished "
              f"in {args.out}/ are skipped)", file=sys.stderr)
        return 130
    print()
    print(format_summary(runs))
    side_by_side = f", notebooks {args.jobs} at a time" if args.jobs > 1 else ""
    print(f"wall time: {format_duration(time.perf_counter() - start)} "
          f"(the shared models and the notebooks{side_by_side})")
    print(f"\nExecuted notebooks and metrics.json are in {args.out}/ (open them with `reidlab lab`).")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from reidlab import reproduce

    if args.list:
        print(reproduce.format_experiments())
        return 0
    if not args.experiments:
        if args.table:
            return _print_table(args.results)
        raise UsageError(f"name at least one experiment ({', '.join(reproduce.EXPERIMENTS)} or all), "
                         f"or use --list or --table")
    datasets = [name.strip() for item in args.dataset or [] for name in item.split(",") if name.strip()] or None
    try:
        runs = reproduce.plan_experiments(args.experiments, scale=args.scale, datasets=datasets)
    except ValueError as error:
        raise UsageError(str(error)) from error
    if args.dry_run:
        print(reproduce.format_plan(runs, results=args.results, data_root=args.data_root, seed=args.seed))
        return 0
    reproduce.check_datasets(runs, args.data_root)
    check_writable(args.results, what="results folder")
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


def _train(args: argparse.Namespace) -> int:
    from reidlab.training.run import parse_overrides, train_run

    try:
        overrides = parse_overrides(args.overrides)
        from reidlab.training import preset

        preset(args.method, scale=args.scale, dataset=args.dataset, **overrides)  # every value checked first
    except ValueError as error:
        raise UsageError(str(error)) from error
    trainer = train_run(args.method, run_dir=args.run_dir, scale=args.scale, dataset=args.dataset,
                        data_root=args.data_root, seed=args.seed, overrides=overrides, init=args.init,
                        resume=args.resume, progress=not args.no_progress)
    if trainer.world.is_main and trainer.history:
        print(json.dumps(trainer.history[-1]))
    return 0


def _data(args: argparse.Namespace) -> int:
    from reidlab.data.synthmarket import describe, generate_synthmarket

    root = generate_synthmarket(args.root, preset=args.preset, seed=args.seed, difficulty=args.difficulty,
                                workers=args.workers, overwrite=args.overwrite, progress=not args.no_progress)
    print(describe(root))
    return 0


def _lab(args: argparse.Namespace) -> int:
    command = [sys.executable, "-m", "jupyter", "lab", str(NOTEBOOK_DIR)]
    if args.port is not None:
        command.append(f"--port={args.port}")
    if args.no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Jupyter refuses to run as root without it (containers, CI machines).
        print("running as root: adding --allow-root", file=sys.stderr)
        command.append("--allow-root")
    return subprocess.call(command)


# ----------------------------------------------------------------------------- parser
def _parser() -> argparse.ArgumentParser:
    from reidlab.data.synthmarket import PRESETS
    from reidlab.training.methods import METHODS, NAMED_PRESETS
    from reidlab.training.start import INITS

    parser = argparse.ArgumentParser(
        prog="reidlab", description="reidlab: a workbench for unsupervised person re-identification.")
    parser.add_argument("--version", action="version", version=f"reidlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    common = argparse.ArgumentParser(add_help=False)  # --debug after the command too
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser = functools.partial(sub.add_parser, parents=[common])  # type: ignore[method-assign]

    demo = sub.add_parser("demo", help="execute the notebooks with papermill and summarise their metrics",
                          description="Execute the workbench notebooks with papermill at one scale and print "
                                      "the metrics they record (what make demo runs).")
    demo.add_argument("--scale", choices=SCALES, default="lab",
                      help="tiny (seconds), lab (CPU minutes, the default) or full (the papers' settings, GPU)")
    demo.add_argument("--out", default="runs/lab", help="folder for the executed notebooks (default runs/lab)")
    demo.add_argument("--dataset", default="synthmarket", help="dataset name (default synthmarket)")
    demo.add_argument("--data-root", default=None, help="dataset folder (SynthMarket is generated when omitted)")
    demo.add_argument("--data-seed", type=_non_negative, default=0, help="SynthMarket generation seed (default 0)")
    demo.add_argument("--seed", type=_non_negative, default=0, help="seed passed to every notebook (default 0)")
    demo.add_argument("--seeds", type=_seed_list, default=None,
                      help="training seeds of the notebooks that train (02, 03, 05, 06), e.g. 0 or 0,1,2 (default: "
                           "each notebook's, three at lab scale)")
    demo.add_argument("--jobs", type=_positive, default=min(2, os.cpu_count() or 1),
                      help="notebooks executed at once, the machine's cores shared out between their kernels "
                           "(default: 2, or 1 on a 1-core machine; two one-thread kernels finish sooner on 2 cores)")
    demo.add_argument("--rerun", action="store_true",
                      help="execute every notebook again, even those already executed with the same parameters")
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
    rep.add_argument("--seed", type=_non_negative, default=0, help="training seed of every run (default 0)")
    rep.add_argument("--list", action="store_true", help="list the experiments and exit")
    rep.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    rep.add_argument("--table", action="store_true",
                     help="write results.md/.html/.png from the finished runs (also done after every run)")
    rep.set_defaults(handler=_reproduce)

    train = sub.add_parser(
        "train", help="train one method (also under torchrun: torchrun -m reidlab.train ...)",
        description="Train one method on one dataset; rank 0 writes checkpoint.pt and history.json into "
                    "--run-dir every epoch and prints the last epoch's record as JSON. Under torchrun every "
                    "process trains on batch_size / nproc images per step.",
    )
    train.add_argument("--method", choices=(*METHODS, *NAMED_PRESETS), required=True,
                       help="the method (or named preset) to train")
    train.add_argument("--scale", choices=SCALES, default="full",
                       help="full (the papers' settings, default), lab or tiny")
    train.add_argument("--dataset", default="market1501",
                       help="market1501, dukemtmcreid, msmt17 or synthmarket (default market1501)")
    train.add_argument("--data-root", default=None,
                       help="dataset folder (needed for the real datasets; SynthMarket is generated if missing)")
    train.add_argument("--run-dir", required=True, help="where checkpoint.pt and history.json are written")
    train.add_argument("--seed", type=_non_negative, default=0, help="training seed (default 0)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a TrainConfig field, e.g. --set epochs=60; repeatable")
    train.add_argument("--init", choices=INITS, default="start",
                       help="start: the scale's start model (ImageNet ResNet-50 at full scale, LabNet's "
                            "seed-1 initialisation at lab scale, a source-pretrained LabNet at tiny scale); "
                            "random: random weights from --seed (tests)")
    train.add_argument("--resume", action="store_true", help="continue from <run-dir>/checkpoint.pt")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    train.set_defaults(handler=_train)

    data = sub.add_parser("data", help="generate the SynthMarket dataset (Market-1501 layout, part masks)",
                          description="Generate the SynthMarket re-ID dataset in the Market-1501 layout, with a "
                                      "ground-truth part mask per image.")
    data.add_argument("--root", default="data/synthmarket", help="folder to write (default data/synthmarket)")
    data.add_argument("--preset", default="default", choices=sorted(PRESETS),
                      help="dataset size and domain (default default; lab: the lab scale's; campus, lab_campus: "
                           "the second domain)")
    data.add_argument("--seed", type=_non_negative, default=0, help="random seed (default 0)")
    data.add_argument("--difficulty", type=float, default=None,
                      help="0 = easy, 1 = default, larger = harder (default: the preset's, 0 for lab presets, else 1)")
    data.add_argument("--overwrite", action="store_true", help="replace an existing different dataset")
    data.add_argument("--workers", type=_non_negative, default=None, help="processes (default min(2, CPUs); 0 = inline)")
    data.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    data.set_defaults(handler=_data)

    lab = sub.add_parser("lab", help="open JupyterLab on the notebooks",
                         description="Open JupyterLab on notebooks/ with this Python's kernel (adds --allow-root "
                                     "when run as root).")
    lab.add_argument("--port", type=int, default=None, help="port to serve on (default: Jupyter's, 8888)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.set_defaults(handler=_lab)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("reidlab").setLevel(logging.INFO)  # reidlab's progress; other libraries' warnings only
    prog = f"reidlab {args.command}"
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"\n{prog}: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    except UsageError as error:
        if args.debug:
            raise
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # one line; --debug shows where
        if args.debug:
            raise
        print(f"{prog}: error: {_describe(error)} (run with --debug for the traceback)", file=sys.stderr)
        return 1


def _describe(error: BaseException) -> str:
    """The error as one line: reidlab's own messages as they are, others with their type."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (ValueError, FileNotFoundError, FileExistsError, RuntimeError)):
        return text
    return f"{type(error).__name__}: {text}"
