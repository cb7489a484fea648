"""Walking a SAM.gov opportunities result set page by page, whatever ``offset`` means to the server.

SAM.gov documents ``offset`` as a page index while users observe a record offset (docs/samgov.md "Paging").
:class:`PageWalk` decides which offset to send next and when to stop; it does no I/O, so the rules are tested
alone. In ``auto`` mode the second request sends ``offset=1``: a page-index server answers with page two, a
record-offset server with records 1..limit, which repeat most of page one. That overlap tells the modes apart,
and in both cases the answer is used (nothing is fetched twice for nothing but one request's worth of repeats).

The walk stops when it has seen ``totalRecords`` distinct notices, when a page comes back short (or empty), when
the next offset lies past ``totalRecords``, or after two pages in a row that brought nothing new (a server that
ignores ``offset``); it can never loop, because every request moves the offset forward. Notices seen on an earlier page of the same walk (SAM.gov repeats them when new ones are posted while
paging) are dropped and counted, so the caller gets each ``noticeId`` at most once per walk. When the walk ends
with fewer distinct notices than ``totalRecords`` announced, :attr:`PageWalk.shortfall` says by how many: the
caller logs it and records it on the run instead of losing it silently.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

#: How ``offset`` is interpreted by the server: "auto" detects it on the second page.
OffsetMode = Literal["auto", "page", "record"]
OFFSET_MODES: tuple[OffsetMode, ...] = ("auto", "page", "record")
#: Requests a walk may make beyond ``ceil(totalRecords / limit)`` of its first answer (the detection probe, notices
#: posted while paging) before it stops anyway: a server that keeps answering full pages cannot hold a worker.
EXTRA_PAGES = 3
#: Consecutive pages that bring no new notice after which a walk stops (a server ignoring ``offset``); the gap is
#: reported as the shortfall. One such page happens when a page's worth of notices is posted while paging.
STALE_PAGES = 2


@dataclass(frozen=True)
class PageCursor:
    """Where a walk stands: the offset to send next, in the mode that is in force (to resume a walk)."""

    offset: int
    mode: OffsetMode


def record_id(record: dict[str, Any]) -> str:
    """The notice's external id; for a record without one (the caller counts it invalid), a digest of its
    content, so that a repeat of it on a later page is still recognised as a repeat."""
    value = record.get("noticeId")
    if isinstance(value, str) and value:
        return value
    text = json.dumps(record, sort_keys=True, default=str)
    return "content:" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class PageWalk:
    """The paging state of one query: next offset, mode, ids seen, and whether to stop."""

    def __init__(self, *, limit: int, mode: OffsetMode = "auto", start: PageCursor | None = None) -> None:
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be 1..1000")
        self.limit = limit
        self.mode: OffsetMode = start.mode if start is not None else mode
        # A cursor taken before the mode was known cannot be continued (the probe needs page one): start over.
        self.offset = start.offset if start is not None and start.mode != "auto" else 0
        self.pages = 0
        self.total = 0
        self.done = False
        self.seen: set[str] = set()
        self._first_ids: list[str] = []
        self._stale = 0
        self._max_pages = EXTRA_PAGES

    @property
    def cursor(self) -> PageCursor:
        """Where to resume: before the mode is known that is the start (see ``__init__``)."""
        return PageCursor(self.offset if self.mode != "auto" else 0, self.mode)

    @property
    def shortfall(self) -> int:
        """Notices announced by ``totalRecords`` that the walk did not see (0 when complete)."""
        return max(self.total - len(self.seen), 0)

    def accept(self, records: list[dict[str, Any]], total: int) -> tuple[list[dict[str, Any]], int]:
        """Take the answer to the request at :attr:`offset`; returns (records not seen before, duplicates)."""
        if self.done:
            raise RuntimeError("the walk is over")
        sent = self.offset
        self.pages += 1
        self.total = max(total, 0)
        ids = [record_id(r) for r in records]
        fresh: list[dict[str, Any]] = []
        for record, rid in zip(records, ids, strict=True):
            if rid not in self.seen:
                self.seen.add(rid)
                fresh.append(record)
        duplicates = len(records) - len(fresh)
        self._stale = self._stale + 1 if records and not fresh else 0
        if self.mode == "auto" and self.pages == 2 and sent == 1:
            self.mode = self._detect(ids)
        self._advance(sent, len(records))
        if self.pages == 1 and self.mode == "auto":
            self._first_ids = ids
        self.done = self._finished(len(records))
        return fresh, duplicates

    def _detect(self, ids: list[str]) -> OffsetMode:
        first = set(self._first_ids)
        overlap = sum(1 for i in ids if i in first)
        return "record" if overlap >= max(1, (self.limit + 1) // 2) and self.limit > 1 else "page"

    def _advance(self, sent: int, count: int) -> None:
        if self.mode == "record":
            self.offset = sent + count
        else:
            # Page mode, and the probe of auto mode (offset=1 is page two or record one).
            self.offset = sent + 1

    def _finished(self, count: int) -> bool:
        if count < self.limit or len(self.seen) >= self.total or self._stale >= STALE_PAGES:
            return True
        if self.mode == "record" and self.offset >= self.total:
            return True
        if self.mode == "page" and self.offset * self.limit >= self.total:
            return True
        if self.pages == 1:
            # Fixed by the first answer: a total that keeps growing cannot keep the walk going.
            self._max_pages = math.ceil(self.total / self.limit) + EXTRA_PAGES
        return self.pages >= self._max_pages
