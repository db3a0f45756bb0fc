"""The papers' reported numbers, kept as data, each with the table it comes from.

Every number below is copied from a table of the papers the project reproduces (Cluster Contrast's
appendix, HHCL, SCWM); docs/methods.md, section 8 lists the same tables. ``reidlab reproduce --table``
puts them next to reidlab's own numbers (:mod:`reidlab.reproduce`). Values are percentages (mAP and
Rank-1, as printed).

Entries are looked up by ``(method, dataset, setting)``; when several tables report the same setting
the first entry listed wins, so each method's own paper comes first.

Not reported in those texts, so left out (the results table shows "n/r"):

- Cluster Contrast's **hard** update: the appendix reports only the default (mean) update, with average
  or GeM pooling; users of the released code report the hard update lower than mean (docs/methods.md,
  section 4.2).
- HHCL on **MSMT17** (HHCL evaluates on Market-1501 and DukeMTMC-reID only).
- SCWM and PPLR on **DukeMTMC-reID** (SCWM evaluates on Market-1501 and MSMT17 only).
- Cluster Contrast with GeM pooling on DukeMTMC-reID (only HHCL's Table 1 lists Cluster Contrast on
  DukeMTMC-reID, without saying the pooling; docs/methods.md, section 8.2 reads HHCL's row as average pooling).
- SpCL's own paper is not among the texts; its fully unsupervised numbers come from the tables of HHCL
  (Market-1501, DukeMTMC-reID) and SCWM (Market-1501, MSMT17), which agree (docs/methods.md, section 8).
  Press articles about SpCL are not a source.
- SpCL's domain adaptation: the Cluster Contrast appendix's Table 1 gives MSMT17 -> Market-1501 and
  Market-1501 -> MSMT17; HHCL's Table 1 lists SpCL among its domain-adaptation methods on Market-1501 and
  DukeMTMC-reID without naming the source (setting "source not named"); no text gives SpCL + Cluster
  Contrast or CAP + Cluster Contrast on DukeMTMC-reID.
- ICE (a reference row of the appendix's Table 1 and of HHCL's Table 1) is no reidlab method.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["PAPER_RESULTS", "SCWM_UPDATE_NAMES", "PaperResult", "find_paper_result"]

IMAGENET_R50 = "ResNet-50 (ImageNet)"
IMAGENET_R50_IBN = "ResNet-50-IBN-a (ImageNet)"  # HHCL Table 3's "IBN-ResNet50" (its run.sh: resnet_ibn50a)
SYNTH_PEDES_R50 = "ResNet-50 (SYNTH-PEDES)"  # SCWM's backbone, Table 4 footnote and section 4.3

CC = "Cluster Contrast appendix (Dai et al.)"
HHCL = "HHCL (Hu et al.)"
SCWM = "SCWM (Hong et al.)"


# SCWM Table 3 names reidlab's memory updates (TrainConfig.memory_update) differently.
SCWM_UPDATE_NAMES = {"mean": "average", "hard": "hardest", "weighted": "weighted"}


class PaperResult(NamedTuple):
    """One reported result.

    Attributes:
        paper: the paper whose table holds the number.
        table: the table, e.g. ``"Table 2"``.
        method: the reidlab method it corresponds to (:data:`reidlab.training.METHODS`).
        dataset: ``"market1501"``, ``"dukemtmcreid"`` or ``"msmt17"``.
        setting: the table row's variant (``"mu=0.25"``, ``"GeM pooling"``...); ``""`` = the method's
            main result.
        mAP: mean average precision, %.
        rank1: Rank-1 (CMC top-1), %.
        backbone: the paper's backbone and initialisation.
        note: where the row comes from when it is not the method's own paper.
    """

    paper: str
    table: str
    method: str
    dataset: str
    setting: str
    mAP: float
    rank1: float
    backbone: str = IMAGENET_R50
    note: str = ""

    @property
    def source(self) -> str:
        """``"<paper> <table>"``, e.g. ``"HHCL (Hu et al.) Table 2"``."""
        return f"{self.paper} {self.table}"


def _rows(paper: str, table: str, method: str, setting: str, numbers: dict[str, tuple[float, float]],
          **kw: str) -> list[PaperResult]:
    return [PaperResult(paper, table, method, dataset, setting, m, r1, **kw) for dataset, (m, r1) in numbers.items()]


PAPER_RESULTS: tuple[PaperResult, ...] = tuple(
    # --- SpCL (Ge et al., NeurIPS 2020), fully unsupervised, as listed by later papers (docs/methods.md, section 8) ---
    _rows(HHCL, "Table 1", "spcl", "", {"market1501": (73.1, 88.1), "dukemtmcreid": (65.3, 81.2)},
          note="SpCL [9] as listed by HHCL")
    + _rows(SCWM, "Table 4", "spcl", "", {"market1501": (73.1, 88.1), "msmt17": (19.1, 42.3)},
            note="SpCL [13] as listed by SCWM")
    # --- Cluster Contrast (Dai et al.): its appendix Table 1, purely unsupervised (docs/methods.md, section 8.1) ---
    + _rows(CC, "Table 1", "cluster_contrast", "GeM pooling", {"market1501": (84.2, 93.4), "msmt17": (33.6, 63.3)})
    + _rows(CC, "Table 1", "cluster_contrast", "average pooling", {"market1501": (83.0, 92.9), "msmt17": (33.0, 62.0)})
    + _rows(HHCL, "Table 1", "cluster_contrast", "average pooling",
            {"market1501": (82.6, 93.0), "dukemtmcreid": (72.8, 85.7)},
            note="CCL [4] (arXiv'21) as listed by HHCL; average pooling (docs/methods.md, section 8.2)")
    + _rows(SCWM, "Table 4", "cluster_contrast", "ACCV'22 version",
            {"market1501": (82.1, 92.3), "msmt17": (27.6, 56.0)}, note="CCL [9] (ACCV'22) as listed by SCWM")
    # --- HHCL (Hu et al.): Table 1 (main), Table 2 (mu sweep, Market-1501) ---
    + _rows(HHCL, "Table 1", "hhcl", "", {"market1501": (84.2, 93.4), "dukemtmcreid": (73.3, 85.1)})
    + _rows(HHCL, "Table 2", "hhcl", "mu=0", {"market1501": (78.5, 90.5)})
    + _rows(HHCL, "Table 2", "hhcl", "mu=0.25", {"market1501": (82.7, 92.9)})
    + _rows(HHCL, "Table 2", "hhcl", "mu=0.5", {"market1501": (84.2, 93.4)})
    + _rows(HHCL, "Table 2", "hhcl", "mu=0.75", {"market1501": (81.7, 92.1)})
    + _rows(HHCL, "Table 2", "hhcl", "mu=1", {"market1501": (80.8, 91.3)})
    # --- HHCL Table 3: with IBN-ResNet50, GeM pooling and label smoothing ---
    + _rows(HHCL, "Table 3", "hhcl", "ResNet50", {"market1501": (84.2, 93.4), "dukemtmcreid": (73.3, 85.1)})
    + _rows(HHCL, "Table 3", "hhcl", "IBN + GeM", {"market1501": (87.8, 95.1), "dukemtmcreid": (76.8, 87.9)},
            backbone=IMAGENET_R50_IBN)
    + _rows(HHCL, "Table 3", "hhcl", "IBN + GeM + LS", {"market1501": (88.2, 94.9), "dukemtmcreid": (77.3, 87.7)},
            backbone=IMAGENET_R50_IBN)
    # --- Domain adaptation (Cluster Contrast appendix Table 1, "source" column; HHCL Table 1) ---
    + _rows(CC, "Table 1", "spcl_uda", "from MSMT17", {"market1501": (77.5, 89.7)}, note="row SPCL [2]")
    + _rows(CC, "Table 1", "spcl_uda", "from Market-1501", {"msmt17": (26.8, 53.7)}, note="row SPCL [2]")
    + _rows(CC, "Table 1", "cluster_contrast_uda", "from MSMT17", {"market1501": (83.3, 92.8)},
            note="row SPCL + Cluster Contrast")
    + _rows(CC, "Table 1", "cluster_contrast_uda", "from Market-1501", {"msmt17": (35.1, 62.4)},
            note="row SPCL + Cluster Contrast")
    + _rows(HHCL, "Table 1", "spcl_uda", "source not named", {"market1501": (76.7, 90.3), "dukemtmcreid": (68.8, 82.9)},
            note="SpCL [9] in HHCL's domain-adaptation block, which does not name the source")
    # --- Camera-aware (Cluster Contrast appendix Table 1; CAP also in HHCL Table 1) ---
    + _rows(CC, "Table 1", "cap", "", {"market1501": (79.2, 91.4), "msmt17": (36.9, 67.4)}, note="row CAP [4]")
    + _rows(HHCL, "Table 1", "cap", "", {"market1501": (79.2, 91.4), "dukemtmcreid": (67.3, 81.1)},
            note="CAP [24] as listed by HHCL")
    + _rows(CC, "Table 1", "cap_cluster_contrast", "", {"market1501": (83.5, 93.1), "msmt17": (40.1, 69.8)},
            note="row CAP + Cluster Contrast")
    # --- SCWM (Hong et al.), SYNTH-PEDES-pretrained ResNet-50: Table 4 (main), Tables 1-3 (ablations) ---
    + _rows(SCWM, "Table 4", "scwm", "", {"market1501": (87.5, 94.9), "msmt17": (49.1, 76.5)}, backbone=SYNTH_PEDES_R50)
    + _rows(SCWM, "Table 2", "scwm", "no correction", {"market1501": (86.2, 94.4), "msmt17": (48.8, 75.9)},
            backbone=SYNTH_PEDES_R50, note="row 'cascaded clustering'")
    + _rows(SCWM, "Table 2", "scwm", "foreground correction", {"market1501": (86.9, 95.1), "msmt17": (48.7, 76.0)},
            backbone=SYNTH_PEDES_R50)
    + _rows(SCWM, "Table 2", "scwm", "space correction", {"market1501": (86.5, 94.4), "msmt17": (49.3, 77.0)},
            backbone=SYNTH_PEDES_R50)
    + _rows(SCWM, "Table 2", "scwm", "both corrections", {"market1501": (87.5, 94.9), "msmt17": (49.1, 76.5)},
            backbone=SYNTH_PEDES_R50, note="row 'both correction'")
    + _rows(SCWM, "Table 3", "scwm", "average update", {"market1501": (87.2, 94.7), "msmt17": (48.7, 76.0)},
            backbone=SYNTH_PEDES_R50)
    + _rows(SCWM, "Table 3", "scwm", "hardest update", {"market1501": (87.4, 95.1), "msmt17": (48.3, 75.6)},
            backbone=SYNTH_PEDES_R50)
    + _rows(SCWM, "Table 3", "scwm", "weighted update", {"market1501": (87.5, 94.9), "msmt17": (49.1, 76.5)},
            backbone=SYNTH_PEDES_R50)
    + _rows(SCWM, "Table 1", "scwm", "+L_wNCE", {"market1501": (87.2, 94.4), "msmt17": (47.2, 74.6)},
            backbone=SYNTH_PEDES_R50)
    + _rows(SCWM, "Table 1", "scwm", "+L_WM", {"market1501": (87.4, 94.8), "msmt17": (47.9, 76.1)},
            backbone=SYNTH_PEDES_R50)
    + _rows(SCWM, "Table 1", "scwm", "+L_WM + L_parsing", {"market1501": (84.4, 93.5), "msmt17": (41.4, 70.0)},
            backbone=SYNTH_PEDES_R50)
    + _rows(SCWM, "Table 1", "scwm", "+L_WM + L_SCC", {"market1501": (87.5, 94.9), "msmt17": (49.1, 76.5)},
            backbone=SYNTH_PEDES_R50)
    # --- PPLR (Cho et al., CVPR 2022), SCWM's baseline with horizontal stripes ---
    + _rows(SCWM, "Table 1", "pplr_stripes", "", {"market1501": (86.6, 94.5), "msmt17": (46.1, 73.4)},
            backbone=SYNTH_PEDES_R50, note="row 'baseline' = PPLR* on SCWM's backbone")
    + _rows(SCWM, "Table 4", "pplr_stripes", "", {"market1501": (86.6, 94.5), "msmt17": (46.1, 73.4)},
            backbone=SYNTH_PEDES_R50, note="row 'PPLR* (Baseline)'")
    + _rows(SCWM, "Table 4", "pplr_stripes", "PPLR paper", {"market1501": (81.5, 92.8), "msmt17": (31.4, 61.1)},
            note="PPLR [8] (CVPR'22) as listed by SCWM")
)


def find_paper_result(method: str, dataset: str, settings: Iterable[str] = ("",),
                      results: Iterable[PaperResult] = PAPER_RESULTS) -> PaperResult | None:
    """The reported result for ``method`` on ``dataset``, trying ``settings`` in order; None if none is.

    Args:
        method: a reidlab method name, e.g. ``"hhcl"``.
        dataset: ``"market1501"``, ``"dukemtmcreid"`` or ``"msmt17"``.
        settings: the acceptable table rows, preferred first (``""`` = the method's main result).
        results: the entries to search (default :data:`PAPER_RESULTS`).
    """
    results = tuple(results)
    for setting in settings:
        for result in results:
            if (result.method, result.dataset, result.setting) == (method, dataset, setting):
                return result
    return None
