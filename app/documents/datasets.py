"""What each export dataset is: one Core query (streamed) and its typed columns.

The queries select plain columns (no ORM objects), ordered by a unique key, so the server-side cursor of
:mod:`app.documents.exports` can hand them out in batches and the writers never hold more than one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, or_, select

from app.db.models import Entity, Opportunity, Proposal, SavedOpportunity, proposal_collaborators
from app.documents.report_model import Col
from app.jobs.documents import ExportFilters

_OPP: Table = Opportunity.__table__  # type: ignore[assignment]
_SAVED: Table = SavedOpportunity.__table__  # type: ignore[assignment]
_PROPOSALS: Table = Proposal.__table__  # type: ignore[assignment]
_ENTITIES: Table = Entity.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    fields: tuple[Col, ...]
    query: Select[*tuple[Any, ...]]

    @property
    def keys(self) -> list[str]:
        return [field.key for field in self.fields]


OPPORTUNITY_FIELDS = (
    Col("notice_id", "Notice ID", width=34),
    Col("title", "Title", width=60),
    Col("solicitation_number", "Solicitation", width=20),
    Col("agency", "Agency", width=40),
    Col("notice_type", "Type", width=18),
    Col("posted_date", "Posted", "date"),
    Col("response_deadline", "Response deadline (UTC)", "datetime", width=22),
    Col("set_aside_code", "Set-aside", width=12),
    Col("set_aside", "Set-aside description", width=30),
    Col("naics_code", "NAICS", width=10),
    Col("active", "Active", "integer", width=8),
    Col("award_amount", "Award amount", "currency"),
    Col("awardee_name", "Awardee", width=30),
    Col("place_state", "State", width=8),
    Col("url", "Link", width=40),
)


def _opportunity_columns() -> list[ColumnElement[object]]:
    c = _OPP.c
    return [
        c.notice_id,
        c.title,
        c.solicitation_number,
        c.agency_path.label("agency"),
        c.notice_type,
        c.posted_date,
        c.response_deadline,
        c.set_aside_code,
        c.set_aside_description.label("set_aside"),
        c.naics_code,
        c.active,
        c.award_amount,
        c.awardee_name,
        c.place_state,
        c.ui_link.label("url"),
    ]


def _opportunity_filters(filters: ExportFilters) -> list[ColumnElement[bool]]:
    c = _OPP.c
    where: list[ColumnElement[bool]] = []
    if filters.posted_from is not None:
        where.append(c.posted_date >= filters.posted_from)
    if filters.posted_to is not None:
        where.append(c.posted_date <= filters.posted_to)
    if filters.naics:
        where.append(c.naics_code.in_(filters.naics))
    if filters.set_aside:
        where.append(c.set_aside_code.in_(filters.set_aside))
    if filters.agency:
        escaped = filters.agency.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(c.agency_path.ilike(f"%{escaped}%", escape="\\"))
    if filters.active is not None:
        where.append(c.active.is_(filters.active))
    return where


def dataset(name: str, *, user_id: int, filters: ExportFilters) -> Dataset:
    """The dataset ``name`` as ``user_id`` may export it, narrowed by ``filters``."""
    if name == "opportunities":
        query = (
            select(*_opportunity_columns()).where(*_opportunity_filters(filters)).order_by(_OPP.c.notice_id)
        )
        return Dataset(name, "Opportunities", OPPORTUNITY_FIELDS, query)
    if name == "saved_opportunities":
        query = (
            select(_SAVED.c.saved_at, *_opportunity_columns())
            .join(_OPP, _OPP.c.notice_id == _SAVED.c.notice_id)
            .where(_SAVED.c.user_id == user_id, *_opportunity_filters(filters))
            .order_by(_SAVED.c.saved_at, _SAVED.c.id)
        )
        fields = (Col("saved_at", "Saved (UTC)", "datetime"), *OPPORTUNITY_FIELDS)
        return Dataset(name, "Saved opportunities", fields, query)
    if name == "proposals":
        return Dataset(name, "Proposals", PROPOSAL_FIELDS, _proposals(user_id, filters))
    if name == "entities":
        entities: Select[*tuple[Any, ...]] = select(*(_ENTITIES.c[f.key] for f in ENTITY_FIELDS)).order_by(
            _ENTITIES.c.uei
        )
        if filters.naics:
            entities = entities.where(_ENTITIES.c.primary_naics.in_(filters.naics))
        return Dataset(name, "Entities", ENTITY_FIELDS, entities)
    raise ValueError(f"unknown dataset {name!r}")  # the argument schema allows none other


PROPOSAL_FIELDS = (
    Col("id", "ID", "integer"),
    Col("title", "Title", width=50),
    Col("status", "Status", width=12),
    Col("due_date", "Due", "date"),
    Col("notice_id", "Notice ID", width=34),
    Col("notice_title", "Notice", width=50),
    Col("created_at", "Created (UTC)", "datetime"),
    Col("updated_at", "Updated (UTC)", "datetime"),
)


def _proposals(user_id: int, filters: ExportFilters) -> Select[*tuple[Any, ...]]:
    p = _PROPOSALS.c
    collaborating = select(proposal_collaborators.c.proposal_id).where(
        proposal_collaborators.c.user_id == user_id
    )
    query = (
        select(
            p.id,
            p.title,
            p.status,
            p.due_date,
            p.notice_id,
            func.coalesce(_OPP.c.title, "").label("notice_title"),
            p.created_at,
            p.updated_at,
        )
        .outerjoin(_OPP, _OPP.c.notice_id == p.notice_id)
        .where(or_(p.owner_id == user_id, p.id.in_(collaborating)))
        .order_by(p.id)
    )
    if filters.status:
        query = query.where(p.status.in_(filters.status))
    return query


ENTITY_FIELDS = (
    Col("uei", "UEI", width=14),
    Col("cage_code", "CAGE", width=8),
    Col("legal_business_name", "Legal business name", width=50),
    Col("registration_status", "Status", width=12),
    Col("registration_date", "Registered", "date"),
    Col("expiration_date", "Expires", "date"),
    Col("primary_naics", "Primary NAICS", width=14),
    Col("naics_list", "NAICS codes", width=30),
)
