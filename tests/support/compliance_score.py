"""Scoring a compliance matrix against hand-marked requirements (tests/fixtures/solicitation/*.json)."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.documents.compliance_text import normalize

#: The sample solicitations and their hand-marked requirements.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "solicitation"
#: A found row is a marked requirement when their normalized texts are at least this similar.
SAME_TEXT = 0.9


def marked(name: str) -> list[dict[str, Any]]:
    """The requirements marked by hand in ``FIXTURES/<name>``."""
    loaded: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))["requirements"]
    return loaded


@dataclass
class Score:
    found: int
    expected: int
    matched: int = 0
    located: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.matched / max(1, self.found)

    @property
    def recall(self) -> float:
        return self.matched / max(1, self.expected)

    @property
    def location_accuracy(self) -> float:
        """Share of the matched rows with the marked document, page and section."""
        return self.located / max(1, self.matched)

    def report(self, title: str) -> str:
        lines = [
            f"{title}: {self.found} found, {self.expected} marked; precision {self.precision:.3f}, "
            f"recall {self.recall:.3f}, location accuracy {self.location_accuracy:.3f}"
        ]
        return "\n  ".join(lines + self.problems)


def score(found: list[dict[str, Any]], expected: list[dict[str, Any]]) -> Score:
    """Match each found row (keys text, source, page, section) to its most similar unmatched marked one."""
    result = Score(found=len(found), expected=len(expected))
    unmatched = dict(enumerate(expected))
    for row in found:
        key = normalize(row["text"])
        candidates = [
            (difflib.SequenceMatcher(None, key, normalize(item["text"])).ratio(), index)
            for index, item in unmatched.items()
        ]
        best, index = max(candidates, default=(0.0, -1))
        if best < SAME_TEXT:
            result.problems.append(f"not a marked requirement: {row}")
            continue
        item = unmatched.pop(index)
        result.matched += 1
        where = (row["source"], row["page"], row["section"])
        if where == (item["document"], item["page"], item["section"]):
            result.located += 1
        else:
            result.problems.append(f"{row['text'][:60]!r} at {where}, marked at {item}")
    result.problems += [f"missed: {item['text']}" for item in unmatched.values()]
    return result
