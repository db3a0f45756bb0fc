"""docs/methods.md, the method reference the code cites: no other reference is cited, and every pointer to it
names a section that exists.

Code, tests, benchmarks, notebooks and the README point to the reference as "docs/methods.md, section 4.2"
(or "sections 5-6", "sections 1 and 5") or as a GitHub anchor, "docs/methods.md#2-k-reciprocal-jaccard-distance".
Anchors are computed from the headings as GitHub renders them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = ROOT / "docs" / "methods.md"
SCANNED_DIRS = ("reidlab", "benchmarks", "tests", "notebooks", "docs")
SCANNED_FILES = ("README.md",)
TEXT_SUFFIXES = {".py", ".ipynb", ".md", ".json", ".txt", ".toml", ".yml", ".yaml", ".cfg"}
SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints"}

# An internal document that users do not have; the code cites docs/methods.md or the papers instead.
INTERNAL_CITATION = re.compile(r"\bSPEC\b")
# A section number or a list/range of them: "4.2", "5-6", "1 and 5", "2, 3".
_NUMBER = r"\d+(?:\.\d+)*"
REFERENCE = re.compile(
    r"docs/methods\.md`{0,2}"
    r"(?:#(?P<anchor>[\w\-]+)"
    rf"|,?[\s#]*(?:sections?\s+)?(?P<numbers>{_NUMBER}(?:\s*(?:-|–|,|and)\s*{_NUMBER})*))"
)
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
SECTION_NUMBER = re.compile(rf"^({_NUMBER})\.?\s")


def _scanned_files() -> list[Path]:
    files = [ROOT / name for name in SCANNED_FILES if (ROOT / name).is_file()]
    for folder in SCANNED_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES and not SKIPPED_PARTS & set(path.parts):
                files.append(path)
    return files


def _text(path: Path) -> str:
    """The file's text; for a notebook, its cells' sources one after the other."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return text
    cells = json.loads(text).get("cells", [])
    return "\n\n".join("".join(cell.get("source", [])) for cell in cells)


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _headings(markdown: str) -> list[str]:
    """The heading texts of a Markdown document, outside fenced code blocks."""
    headings, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            headings.append(match.group(2))
    return headings


def _anchors(headings: list[str]) -> set[str]:
    """GitHub's anchors of ``headings``, a repeated one numbered -1, -2... as GitHub does."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for heading in headings:
        anchor = github_anchor(heading)
        if anchor in seen:
            seen[anchor] += 1
            anchor = f"{anchor}-{seen[anchor]}"
        else:
            seen[anchor] = 0
        anchors.add(anchor)
    return anchors


def _section_numbers(headings: list[str]) -> set[str]:
    return {match.group(1) for heading in headings if (match := SECTION_NUMBER.match(heading))}


FILES = _scanned_files()
HEADINGS = _headings(METHODS.read_text(encoding="utf-8")) if METHODS.is_file() else []


def _id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", [p for p in FILES if p != Path(__file__).resolve()], ids=_id)
def test_no_internal_spec_citation(path: Path) -> None:
    """Nothing cites the internal document; notebooks fail here until their citations are rewritten."""
    text = _text(path)
    lines = sorted({_line_of(text, m.start()) for m in INTERNAL_CITATION.finditer(text)})
    assert not lines, (
        f"{_id(path)} cites an internal document (the word SPEC) at line(s) {lines} of its text"
        f"{' (cell sources joined)' if path.suffix == '.ipynb' else ''}; point to docs/methods.md, "
        "section N, or to the paper's equation or table instead"
    )


def test_methods_reference_has_numbered_sections() -> None:
    """The stable top-level sections 1-9 that the code points to, and unique anchors."""
    assert METHODS.is_file(), "docs/methods.md is missing"
    numbers = _section_numbers(HEADINGS)
    assert {str(n) for n in range(1, 10)} <= numbers, f"top-level sections found: {sorted(numbers)}"
    for anchor in ("1-the-shared-loop", "2-k-reciprocal-jaccard-distance", "3-dbscan-and-each-methods-eps",
                   "4-memories", "42-cluster-contrast-cluster-memory", "8-reported-numbers"):
        assert anchor in _anchors(HEADINGS), f"docs/methods.md lost the heading of #{anchor}"


def test_github_anchor() -> None:
    assert github_anchor("2. k-reciprocal Jaccard distance") == "2-k-reciprocal-jaccard-distance"
    assert github_anchor("3. DBSCAN and each method's eps") == "3-dbscan-and-each-methods-eps"
    assert github_anchor("4.4 SCWM: spatial cascaded clustering") == "44-scwm-spatial-cascaded-clustering"
    assert _anchors(["Defaults", "Defaults"]) == {"defaults", "defaults-1"}


def test_references_point_to_existing_sections() -> None:
    """Every "docs/methods.md, section N" and "docs/methods.md#<anchor>" names a heading of docs/methods.md,
    and every in-page link of docs/methods.md an anchor of its own."""
    anchors, numbers = _anchors(HEADINGS), _section_numbers(HEADINGS)
    problems, found = [], 0
    for path in FILES:
        text = _text(path)
        for match in REFERENCE.finditer(text):
            found += 1
            where = f"{_id(path)}:{_line_of(text, match.start())}"
            if match.group("anchor") is not None:
                if match.group("anchor") not in anchors:
                    problems.append(f"{where}: no heading has the anchor #{match.group('anchor')}")
                continue
            for number in re.findall(_NUMBER, match.group("numbers")):
                if number not in numbers:
                    problems.append(f"{where}: docs/methods.md has no section {number}")
    methods = METHODS.read_text(encoding="utf-8")
    for match in re.finditer(r"\]\(#([^)\s]+)\)", methods):
        if match.group(1) not in anchors:
            problems.append(f"docs/methods.md:{_line_of(methods, match.start())}: no heading has #{match.group(1)}")
    assert found > 0, "no reference to docs/methods.md found: is the pattern still the one the code uses?"
    assert not problems, "\n".join(problems)
