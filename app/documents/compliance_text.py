"""Requirement sentences out of solicitation text: the pure part of the compliance matrix (no database, no files).

A compliance matrix lists what the offeror or the contractor is obliged to do, each with where it was said, so
that a proposal team can answer every one. The text comes from PDFs (lines wrapped by the layout, running
headers and footers on every page), DOCX paragraphs and the notice's description; :func:`requirements` turns
it into numbered, de-duplicated :class:`Requirement` s:

1. **Lines to blocks.** Running headers and footers (a line repeated on most pages) are dropped. A heading
   starts a new block and sets the current section: ``SECTION L – INSTRUCTIONS ...`` (section ``L``), a
   numbered label such as ``C.4.1 Service Desk Operations`` or ``2.1 Accounts``, or a short line without
   final punctuation (a title, a table row). Other lines are joined: layout wraps are not sentence ends.
2. **Blocks to sentences**, on ``.``/``?``/``!`` followed by a capital, except after abbreviations
   (``e.g.``, ``U.S.``, ``a.m.`` ...). A sentence keeps the page it starts on.
3. **Requirements** are sentences with an obligation: *shall*, *must*, *is/are/be required to*, *will provide*
   (submit, deliver ...), *is/are responsible for*. Not requirements: a sentence whose subject is the
   Government (*The Government will evaluate*, *shall not be liable*), the keyword quoted (the definition of
   *"shall"*), recommendations (*should*) and permissions (*may*).
4. **Section**: the current heading's label (``L.3.2``; ``Section M`` under a bare section heading); text
   outside any heading (a description) takes the first section it cites. **Type** follows the section's
   letter (L: proposal submission, M: evaluation, B: pricing, others: performance), or the wording.
5. **De-duplication**: the same sentence (ignoring case, spacing and punctuation), or one at least
   :data:`NEAR_DUPLICATE` similar, is kept once, where it was first seen; then numbered ``REQ-001`` ...

It is tuned on ``tests/fixtures/solicitation`` (precision and recall against a hand-marked list are tested)
and deliberately simple: rules an operator can read, no model.
"""

from __future__ import annotations

import collections
import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Two requirements at least this similar (difflib ratio of their normalized text) are one.
NEAR_DUPLICATE = 0.95
#: A line on at least this share of a document's pages (digits ignored) is a running header or footer.
RUNNING_LINE_SHARE = 0.6
#: A sentence shorter than this (words) is a fragment (a table cell, a label), never a requirement.
MIN_WORDS = 5
#: Longest line taken for an unnumbered title (characters, words).
TITLE_MAX_CHARS, TITLE_MAX_WORDS = 70, 9

PERFORMANCE, SUBMISSION, EVALUATION, PRICING = "Performance", "Proposal submission", "Evaluation", "Pricing"
_TYPE_BY_LETTER = {"L": SUBMISSION, "M": EVALUATION, "B": PRICING}

_SECTION_HEADING = re.compile(r"^(?:SECTION|Section)\s+([A-Z])(?:\s*[-–—:]\s*|\s*$)(.*)$")
_LABEL = re.compile(r"^((?:[A-Z]|\d{1,2})(?:\.\d{1,3})+)\.?\s+(\S.*)$")
_OBLIGATION = re.compile(
    r"\b(?P<keyword>shall|must|(?:is|are|be)\s+required\s+to|(?:is|are)\s+responsible\s+for|"
    r"will\s+(?:provide|submit|deliver|furnish|maintain|ensure|comply|perform|include|prepare|establish|"
    r"notify|coordinate|support))\b",
    re.IGNORECASE,
)
_QUOTES = "\"'“”‘’"
_GOVERNMENT_SUBJECT = re.compile(
    r"\b(Government|Contracting\s+Officer|COR|Source\s+Selection\s+Authority|evaluators?)\b"
)
_PARTY_SUBJECT = re.compile(
    r"\b(Contractor|Offeror|Offerors|Vendor|Quoter|proposal|personnel)\b", re.IGNORECASE
)
_REFERENCE = re.compile(r"\b(?:Section\s+([A-Z](?:\.\d{1,3})*)\b|([A-Z]\.\d{1,3}(?:\.\d{1,3})*)\b)")
_SUBMISSION_WORDS = re.compile(
    r"\b(offerors?|proposals?|quot(?:e|es|ers?|ation)|volume|questions?)\b", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[\"“(]?[A-Z0-9])")
_LAST_WORD = re.compile(r"(\S+)$")
_ABBREVIATIONS = frozenset(
    [
        "e.g.",
        "i.e.",
        "u.s.",
        "no.",
        "nos.",
        "sec.",
        "para.",
        "approx.",
        "inc.",
        "corp.",
        "co.",
        "ltd.",
        "dr.",
        "mr.",
        "ms.",
        "mrs.",
        "vs.",
        "a.m.",
        "p.m.",
        "st.",
        "jan.",
        "feb.",
        "mar.",
        "apr.",
        "jun.",
        "jul.",
        "aug.",
        "sep.",
        "sept.",
        "oct.",
        "nov.",
        "dec.",
        "fig.",
        "ref.",
        "vol.",
        "et",
        "al.",
        "u.s.c.",
        "c.f.r.",
        "hr.",
        "min.",
        "ea.",
        "max.",
        "est.",
    ]
)
_WHITESPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Source:
    """A document's text. ``pages[i]`` is page ``i + 1``; ``paged`` is False where page numbers mean nothing."""

    name: str
    pages: Sequence[str]
    paged: bool = True


@dataclass(frozen=True)
class Requirement:
    """One row of the compliance matrix."""

    id: str
    section: str | None
    text: str
    source: str
    page: int | None
    type: str
    #: The obligation word found (shall, must, required to ...), lower case.
    keyword: str


@dataclass
class _Block:
    section: str | None
    #: (character offset in ``text``, page) where each page's contribution starts.
    pages: list[tuple[int, int]]
    text: str = ""

    def add(self, line: str, page: int) -> None:
        if not self.pages or self.pages[-1][1] != page:
            self.pages.append((len(self.text) + (1 if self.text else 0), page))
        if self.text.endswith("-") and len(self.text) > 1 and self.text[-2].isalpha():
            self.text += line  # "Transition-" + "In": a compound split by the layout
        else:
            self.text = f"{self.text} {line}" if self.text else line

    def page_at(self, offset: int) -> int:
        page = self.pages[0][1]
        for start, number in self.pages:
            if start <= offset:
                page = number
        return page


def requirements(sources: Iterable[Source]) -> list[Requirement]:
    """The numbered, de-duplicated requirements of ``sources``, in the order the sources are given."""
    found: list[tuple[str, str | None, str, int | None, str]] = []
    for source in sources:
        for block in _blocks(source):
            for offset, sentence in _sentences(block.text):
                keyword = obligation(sentence)
                if keyword is None:
                    continue
                section = block.section or _cited_section(sentence)
                page = block.page_at(offset) if source.paged else None
                found.append((sentence, section, source.name, page, keyword))
    unique = _deduplicate(found)
    return [
        Requirement(
            id=f"REQ-{number:03d}",
            section=section,
            text=text,
            source=name,
            page=page,
            type=requirement_type(section, text),
            keyword=keyword,
        )
        for number, (text, section, name, page, keyword) in enumerate(unique, 1)
    ]


def obligation(sentence: str) -> str | None:
    """The obligation keyword that makes ``sentence`` a requirement of the offeror or contractor, or None."""
    if len(sentence.split()) < MIN_WORDS:
        return None
    for match in _OBLIGATION.finditer(sentence):
        before = sentence[match.start() - 1] if match.start() > 0 else ""
        after = sentence[match.end()] if match.end() < len(sentence) else ""
        if before in _QUOTES and after in _QUOTES:
            continue  # the word itself is being talked about ('the word "shall" denotes ...')
        subject = sentence[: match.start()]
        if _GOVERNMENT_SUBJECT.search(subject) and not _PARTY_SUBJECT.search(subject):
            return None  # an obligation of the Government is no line of the offeror's matrix
        return _WHITESPACE.sub(" ", match.group("keyword").lower())
    return None


def requirement_type(section: str | None, text: str) -> str:
    letter = section.removeprefix("Section ")[:1] if section else ""
    if letter in _TYPE_BY_LETTER:
        return _TYPE_BY_LETTER[letter]
    if _SUBMISSION_WORDS.search(text):
        return SUBMISSION
    return PERFORMANCE


def normalize(text: str) -> str:
    """Lower case, letters and digits only, single spaces: the identity used for de-duplication."""
    return _WHITESPACE.sub(" ", _NOT_WORD.sub(" ", text.lower())).strip()


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u00ad", "")
    return text.replace("\u00a0", " ").replace("\t", " ")


def _running_lines(pages: Sequence[list[str]]) -> set[str]:
    if len(pages) < 3:
        return set()
    counts: collections.Counter[str] = collections.Counter()
    for lines in pages:
        counts.update({_line_key(line) for line in lines})
    return {key for key, count in counts.items() if count >= RUNNING_LINE_SHARE * len(pages)}


def _line_key(line: str) -> str:
    return re.sub(r"\d+", "#", line)


def _blocks(source: Source) -> list[_Block]:
    pages = [[line.strip() for line in _clean(page).splitlines() if line.strip()] for page in source.pages]
    running = _running_lines(pages)
    blocks: list[_Block] = []
    section: str | None = None
    current = _Block(section, [])
    in_section_heading = False

    def flush() -> None:
        nonlocal current
        if current.text:
            blocks.append(current)
        current = _Block(section, [])

    for number, lines in enumerate(pages, 1):
        for index, line in enumerate(lines):
            if _line_key(line) in running:
                continue
            if in_section_heading and not any(ch.islower() for ch in line) and len(line) <= TITLE_MAX_CHARS:
                continue  # the second line of a wrapped SECTION title ("... NOTICES TO" / "OFFERORS")
            in_section_heading = False
            at_boundary = not current.text or current.text[-1] in ".!?:;"
            heading = _SECTION_HEADING.match(line)
            if heading and (line.startswith("SECTION") or not line.endswith(".")):
                section = f"Section {heading.group(1)}"
                flush()
                in_section_heading = True
                continue
            label = _LABEL.match(line)
            if label and label.group(2)[:1].isupper() and (at_boundary or _is_title(label.group(2))):
                section = label.group(1)
                flush()
                rest = label.group(2)
                if not _is_title(rest):
                    current.add(rest, number)
                continue
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if (
                at_boundary
                and _is_title(line)
                and (not following or following[:1].isupper() or following[:1].isdigit())
            ):
                flush()
                continue
            current.add(line, number)
    flush()
    return blocks


def _is_title(line: str) -> bool:
    return (
        len(line) <= TITLE_MAX_CHARS
        and len(line.split()) <= TITLE_MAX_WORDS
        and line[-1:] not in ".!?;:,"
        and not _OBLIGATION.search(line)
    )


def _sentences(text: str) -> list[tuple[int, str]]:
    """(offset, sentence) pairs: split at sentence ends, re-joined after abbreviations."""
    pieces: list[tuple[int, str]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        candidate = text[start : match.start()].rstrip()
        word = _LAST_WORD.search(candidate)
        if word and word.group(1).lower().lstrip("(") in _ABBREVIATIONS:
            continue
        if candidate:
            pieces.append((start, candidate))
        start = match.end()
    tail = text[start:].strip()
    if tail:
        pieces.append((start, tail))
    return pieces


def _cited_section(sentence: str) -> str | None:
    match = _REFERENCE.search(sentence)
    if match is None:
        return None
    return (
        f"Section {match.group(1)}"
        if match.group(1) and "." not in match.group(1)
        else match.group(1) or match.group(2)
    )


def _deduplicate(
    found: list[tuple[str, str | None, str, int | None, str]],
) -> list[tuple[str, str | None, str, int | None, str]]:
    kept: list[tuple[str, str | None, str, int | None, str]] = []
    seen: dict[str, int] = {}
    normals: list[str] = []
    for item in found:
        key = normalize(item[0])
        if key in seen or any(_near(key, other) for other in normals):
            continue
        seen[key] = len(kept)
        normals.append(key)
        kept.append(item)
    return kept


def _near(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > (1 - NEAR_DUPLICATE) * max(len(a), len(b)):
        return False
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return matcher.quick_ratio() >= NEAR_DUPLICATE and matcher.ratio() >= NEAR_DUPLICATE
