#!/usr/bin/env bash
# The two orderings of the papers that the lab's short notebook schedules do not show, run over the full 8 epochs
# with three seeds (benchmarks/CALIBRATION.md, "Ninth round"): HHCL's mu sweep (notebook 03 trains 4 epochs a
# run; here mu = 0, 0.5 and 1) and SCWM against PPLR's stripe baseline (notebook 05 trains 2 epochs; here the
# weighted update, the full SCWM, and the stripes). Each notebook's own checks then print whether the paper's
# order holds. The two notebooks run side by side, each kernel on one thread, into runs/long/: 26.4 minutes on an
# idle 2-core machine with the shared models cached (run make demo first, or the first notebook trains the ceiling).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/long}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
"$PY" -m papermill notebooks/03_hard_mining.ipynb "$OUT/03_mu_8_epochs.ipynb" -p scale lab \
    -p mus 0,0.5,1 -p sweep_epochs 8 -p seeds 0,1,2 > "$OUT/03.log" 2>&1 &
hhcl=$!
"$PY" -m papermill notebooks/05_weighted_memory.ipynb "$OUT/05_stripes_8_epochs.ipynb" -p scale lab \
    -p updates weighted -p sweep_epochs 8 -p seeds 0,1,2 > "$OUT/05.log" 2>&1 &
scwm=$!
wait "$hhcl" || { echo "notebook 03 failed: see $OUT/03.log" >&2; exit 1; }
wait "$scwm" || { echo "notebook 05 failed: see $OUT/05.log" >&2; exit 1; }
"$PY" - "$OUT" <<'PY'
import sys
from pathlib import Path

import nbformat

for path in sorted(Path(sys.argv[1]).glob("*.ipynb")):  # each notebook's table and its claims' verdicts
    print(f"== {path.name}")
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith(("OK:", "WARNING:")) or "mAP" in line and ("+-" in line or "seed" in line):
                    print(line)
PY
