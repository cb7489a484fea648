"""The four reports as data: what each one shows, read from the database into a :class:`Report`.

The lists the weekly email shows come from the email's own queries (``app.email.content.queries``), so the PDF
attached to a weekly summary lists what the email summarises, with longer lists. Analytics reads the
aggregate tables ``refresh_analytics`` rebuilds (``analytics_counts``), and counts from ``opportunities``
directly while those are empty (a fresh install, a sync that never ran).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from app.db.models import AnalyticsCount, Opportunity, Proposal, SavedOpportunity
from app.db.session import autocommit, session_scope
from app.documents.charts import bar_chart
from app.documents.report_model import Col, Report, Section
from app.email.content import queries
from app.email.content.clock import day_range, week_monday, zone
from app.email.content.common import UserRecord, get_user

#: Longest list a report section shows (a report is read, an export is for the rest).
MAX_ROWS = 2000
#: How far back "matching" opportunities are looked for in the opportunities report.
MATCH_WINDOW = dt.timedelta(days=30)
#: Weeks of postings the analytics report covers when it counts from ``opportunities``.
ANALYTICS_WEEKS = 12
#: Bars per chart.
TOP = 15

_COUNTS: Table = AnalyticsCount.__table__  # type: ignore[assignment]
_OPP: Table = Opportunity.__table__  # type: ignore[assignment]

OPPORTUNITY_COLS = (
    Col("notice_id", "Notice ID", width=34),
    Col("title", "Title", width=60),
    Col("agency", "Agency", width=36),
    Col("set_aside", "Set-aside", width=14),
    Col("naics", "NAICS", width=10),
    Col("posted", "Posted", "date"),
    Col("deadline", "Deadline (UTC)", "datetime", width=22),
    Col("value", "Value", "currency"),
)
PROPOSAL_COLS = (
    Col("id", "ID", "integer", width=8),
    Col("title", "Proposal", width=50),
    Col("status", "Status", width=12),
    Col("due_date", "Due", "date"),
    Col("days_left", "Days left", "integer"),
    Col("notice_id", "Notice ID", width=34),
)
COUNT_COLS = (
    Col("key", "Key", width=40),
    Col("notices", "Notices", "integer"),
    Col("active", "Active", "integer"),
    Col("award_count", "Awards", "integer"),
    Col("award_total", "Awarded", "currency"),
)


def build(report: str, *, user_id: int, week: str | None = None, now: dt.datetime | None = None) -> Report:
    """The report ``report`` for ``user_id``; :class:`~app.errors.PermanentError` for a user that does not exist."""
    moment = now or dt.datetime.now(dt.UTC)
    with autocommit() as conn:
        user = get_user(conn, user_id)
    builder: Callable[[Session, UserRecord, dt.datetime, str | None], Report] = BUILDERS[report]
    with session_scope() as session:
        return builder(session, user, moment, week)


def _owner(user: UserRecord) -> str:
    return user.name or user.email or f"user {user.id}"


def _agency(path: str | None) -> str:
    return (path or "").split(".")[0]


def _opportunity_row(o: Opportunity) -> tuple[Any, ...]:
    return (
        o.notice_id,
        o.title or o.notice_id,
        _agency(o.agency_path),
        o.set_aside_code or "",
        o.naics_code or "",
        o.posted_date,
        o.response_deadline,
        o.award_amount,
    )


def _proposal_rows(proposals: Sequence[Proposal], today: dt.date) -> list[tuple[Any, ...]]:
    return [
        (
            p.id,
            p.title,
            p.status.replace("_", " "),
            p.due_date,
            (p.due_date - today).days if p.due_date else None,
            p.notice_id or "",
        )
        for p in proposals
    ]


def pipeline(session: Session, user: UserRecord, now: dt.datetime, _week: str | None) -> Report:
    proposals = list(queries.proposal_pipeline(session, user.id))[:MAX_ROWS]
    counts = Counter(p.status.replace("_", " ") for p in proposals)
    today = now.astimezone(zone(user.timezone)).date()
    due_soon = [p for p in proposals if p.due_date and today <= p.due_date <= today + dt.timedelta(days=30)]
    by_status = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return Report(
        name="pipeline",
        title="Proposal pipeline",
        subtitle="Your proposals by status and due date",
        owner=_owner(user),
        generated_at=now,
        figures=(
            ("Proposals", f"{len(proposals):,}"),
            ("Due in 30 days", f"{len(due_soon):,}"),
            *((status.capitalize(), f"{count:,}") for status, count in by_status),
        ),
        sections=(
            Section(
                "By status",
                (Col("status", "Status", width=16), Col("count", "Proposals", "integer")),
                by_status,
                chart=bar_chart(by_status, title="Proposals by status"),
            ),
            Section(
                "Proposals by due date",
                PROPOSAL_COLS,
                _proposal_rows(proposals, today),
                note="Owned or shared with you; undated proposals last.",
                primary=True,
            ),
        ),
    )


def opportunities(session: Session, user: UserRecord, now: dt.datetime, _week: str | None) -> Report:
    saved = session.scalars(
        select(Opportunity)
        .join(SavedOpportunity, SavedOpportunity.notice_id == Opportunity.notice_id)
        .where(SavedOpportunity.user_id == user.id)
        .order_by(
            Opportunity.response_deadline.is_(None), Opportunity.response_deadline, Opportunity.notice_id
        )
        .limit(MAX_ROWS)
    ).all()
    matching = queries.new_matches(session, user, since=now - MATCH_WINDOW, until=now, limit=MAX_ROWS)
    open_saved = [o for o in saved if o.response_deadline is None or o.response_deadline > now]
    by_set_aside = Counter((o.set_aside_code or "none") for o in (*saved, *matching))
    chart_items = sorted(by_set_aside.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    return Report(
        name="opportunities",
        title="Opportunities",
        subtitle="Saved notices and new matches for your interests",
        owner=_owner(user),
        generated_at=now,
        figures=(
            ("Saved", f"{len(saved):,}"),
            ("Saved and still open", f"{len(open_saved):,}"),
            (f"New matches ({MATCH_WINDOW.days} days)", f"{len(matching):,}"),
        ),
        sections=(
            Section(
                "Saved opportunities",
                OPPORTUNITY_COLS,
                [_opportunity_row(o) for o in saved],
                note="Soonest deadline first.",
                chart=bar_chart(chart_items, title="Saved and matching notices by set-aside"),
                primary=True,
            ),
            Section(
                "Matching opportunities",
                OPPORTUNITY_COLS,
                [_opportunity_row(o) for o in matching],
                note=f"Active notices first seen in the last {MATCH_WINDOW.days} days that match your NAICS "
                "codes, keywords or set-asides.",
            ),
        ),
    )


#: (dimension in analytics_counts, column header, section title)
DIMENSIONS = (
    ("naics", "NAICS code", "By NAICS code"),
    ("agency", "Agency", "By agency"),
    ("set_aside", "Set-aside", "By set-aside"),
    ("week", "Week posted", "By week posted"),
)


def analytics(session: Session, user: UserRecord, now: dt.datetime, _week: str | None) -> Report:
    counts = _aggregates(session) or _counts_from_opportunities(session, now)
    sections = []
    for dimension, label, title in DIMENSIONS:
        rows = counts.get(dimension, [])
        if dimension == "week":
            rows = sorted(rows, key=lambda row: str(row[0]))
            chart_rows = rows[-TOP:]
        else:
            rows = sorted(rows, key=lambda row: (-int(row[1]), str(row[0])))
            chart_rows = rows[:TOP]
        sections.append(
            Section(
                title,
                (Col("key", label, width=40), *COUNT_COLS[1:]),
                rows,
                chart=bar_chart([(str(r[0]), float(r[1])) for r in chart_rows], title=f"Notices by {label}"),
                primary=dimension == "naics",
            )
        )
    total = sum(int(row[1]) for row in counts.get("set_aside", []))
    return Report(
        name="analytics",
        title="Opportunity analytics",
        subtitle="Notices by NAICS code, agency, set-aside and week",
        owner=_owner(user),
        generated_at=now,
        figures=(("Notices counted", f"{total:,}"),),
        sections=tuple(sections),
    )


def _aggregates(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    result: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    c = _COUNTS.c
    for row in session.execute(select(c.dimension, c.key, c.notices, c.active, c.award_count, c.award_total)):
        result[row.dimension].append((row.key, row.notices, row.active, row.award_count, row.award_total))
    return dict(result)


def _counts_from_opportunities(session: Session, now: dt.datetime) -> dict[str, list[tuple[Any, ...]]]:
    """The four dimensions counted from ``opportunities`` posted in the last weeks (grouped in SQL by the raw
    columns, folded in Python where a key is derived: agency from its path, ISO week from the date)."""
    c = _OPP.c
    since = (now - dt.timedelta(weeks=ANALYTICS_WEEKS)).date()
    measures = (
        func.count(),
        func.count().filter(c.active.is_(True)),
        func.count(c.award_amount),
        func.coalesce(func.sum(c.award_amount), 0),
    )
    result: dict[str, list[tuple[Any, ...]]] = {}
    for dimension, column, fold in (
        ("naics", c.naics_code, lambda key: key or "none"),
        ("agency", c.agency_path, _agency),
        ("set_aside", c.set_aside_code, lambda key: key or "none"),
        ("week", c.posted_date, _iso_week),
    ):
        folded: dict[str, list[Any]] = {}
        for key, notices, active, awards, total in session.execute(
            select(column, *measures).where(c.posted_date >= since).group_by(column)
        ):
            bucket = folded.setdefault(fold(key) or "none", [0, 0, 0, Decimal(0)])
            bucket[0] += notices
            bucket[1] += active
            bucket[2] += awards
            bucket[3] += Decimal(total)
        result[dimension] = [(key, *values) for key, values in folded.items()]
    return result


def _iso_week(day: dt.date | None) -> str:
    if day is None:
        return "none"
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def weekly_summary(session: Session, user: UserRecord, now: dt.datetime, week: str | None) -> Report:
    """What the Monday email summarises for ISO ``week``: last week's matches, this week's saved deadlines, the
    pipeline; the same queries and windows as ``app.email.content.weekly``."""
    tz = zone(user.timezone)
    chosen = week or _iso_week(now.astimezone(tz).date())
    monday = week_monday(chosen)
    last_week_start, week_start = day_range(monday - dt.timedelta(days=7), 7, tz)
    _, week_end = day_range(monday, 7, tz)
    matches = queries.new_matches(session, user, since=last_week_start, until=week_start, limit=MAX_ROWS)
    deadlines = queries.saved_deadlines(session, user.id, start=week_start, end=week_end, limit=MAX_ROWS)
    proposals = list(queries.proposal_pipeline(session, user.id))[:MAX_ROWS]
    counts = sorted(Counter(p.status.replace("_", " ") for p in proposals).items())
    return Report(
        name="weekly-summary",
        title=f"Weekly summary {chosen}",
        subtitle=f"Week of {monday:%d %B %Y}",
        owner=_owner(user),
        generated_at=now,
        figures=(
            ("New matches last week", f"{len(matches):,}"),
            ("Saved deadlines this week", f"{len(deadlines):,}"),
            ("Proposals", f"{len(proposals):,}"),
        ),
        sections=(
            Section(
                "Saved notices due this week",
                OPPORTUNITY_COLS,
                [_opportunity_row(o) for o in deadlines],
                primary=True,
            ),
            Section("New matches last week", OPPORTUNITY_COLS, [_opportunity_row(o) for o in matches]),
            Section(
                "Proposal pipeline",
                PROPOSAL_COLS,
                _proposal_rows(proposals, monday),
                chart=bar_chart(counts, title="Proposals by status"),
            ),
        ),
    )


BUILDERS: dict[str, Callable[[Session, UserRecord, dt.datetime, str | None], Report]] = {
    "pipeline": pipeline,
    "opportunities": opportunities,
    "analytics": analytics,
    "weekly-summary": weekly_summary,
}
