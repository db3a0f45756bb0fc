"""``calibrate_lab.py`` with a wider LabNet: the sixth calibration round's width lever (benchmarks/CALIBRATION.md).

LabNet's channel widths are a constructor argument that ``reidlab.models.build_model`` does not expose (the
workbench ships one LabNet). This script sets the widths of every LabNet built in this process, then runs
``calibrate_lab.py`` with the remaining arguments. Cached start models are keyed by their training settings, not
by their widths, so the datasets and models of a wider net go to their own folder, ``data/labnet-<widths>/``
(or ``$REIDLAB_DATA`` when set).

Example (p12 in CALIBRATION.md)::

    python benchmarks/calibrate_wide_labnet.py --widths 64,128,256,256 --one-thread --name p12-wide64 \\
        --difficulty 0 --start-epochs 0 --ceiling-epochs 0 ...
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

import reidlab.models.reid as reid

BENCHMARKS = Path(__file__).resolve().parent


def main() -> None:
    if "--widths" not in sys.argv[1:-1]:
        raise SystemExit("usage: calibrate_wide_labnet.py --widths STEM,W1,W2,W3 [calibrate_lab.py arguments]")
    at = sys.argv.index("--widths")
    try:
        widths = tuple(int(v) for v in sys.argv[at + 1].split(","))
    except ValueError:
        widths = ()
    if len(widths) != 4 or min(widths) < 1:
        raise SystemExit(f"--widths takes four positive channel counts (stem and three stages), "
                         f"got {sys.argv[at + 1]!r}")
    original = reid.LabNet.__init__

    def init(self, widths=widths, last_stride=1, ibn=False):  # the same signature, other default widths
        original(self, widths, last_stride, ibn)

    reid.LabNet.__init__ = init
    os.environ.setdefault("REIDLAB_DATA", str(BENCHMARKS.parent / "data" / ("labnet-" + "-".join(map(str, widths)))))
    sys.argv = [str(BENCHMARKS / "calibrate_lab.py")] + sys.argv[1:at] + sys.argv[at + 2:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
