"""What each export dataset is: one Core query (streamed) and its typed columns.

The queries select plain columns (no ORM objects), ordered by a unique key, so the server-side cursor of
:mod:`app.documents.exports` can hand them out in batches and the writers never hold more than one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, or_, select

from app.db.models import Entity, Opportunity, Proposal, SavedOpportunity, proposal_collaborators
from app.documents.xlsx import Column, ColumnKind
from app.jobs.documents import ExportFilters

_OPP: Table = Opportunity.__table__  # type: ignore[assignment]
_SAVED: Table = SavedOpportunity.__table__  # type: ignore[assignment]
_PROPOSALS: Table = Proposal.__table__  # type: ignore[assignment]
_ENTITIES: Table = Entity.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Field:
    """One exported column: its machine name (CSV/JSONL header), its human header (XLSX) and its type."""

    key: str
    header: str
    kind: ColumnKind = "text"
    width: float | None = None

    @property
    def column(self) -> Column:
        return Column(self.header, self.kind, self.width)


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    fields: tuple[Field, ...]
    query: Select[*tuple[Any, ...]]

    @property
    def keys(self) -> list[str]:
        return [field.key for field in self.fields]


OPPORTUNITY_FIELDS = (
    Field("notice_id", "Notice ID", width=34),
    Field("title", "Title", width=60),
    Field("solicitation_number", "Solicitation", width=20),
    Field("agency", "Agency", width=40),
    Field("notice_type", "Type", width=18),
    Field("posted_date", "Posted", "date"),
    Field("response_deadline", "Response deadline (UTC)", "datetime", width=22),
    Field("set_aside_code", "Set-aside", width=12),
    Field("set_aside", "Set-aside description", width=30),
    Field("naics_code", "NAICS", width=10),
    Field("active", "Active", "integer", width=8),
    Field("award_amount", "Award amount", "currency"),
    Field("awardee_name", "Awardee", width=30),
    Field("place_state", "State", width=8),
    Field("url", "Link", width=40),
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
        fields = (Field("saved_at", "Saved (UTC)", "datetime"), *OPPORTUNITY_FIELDS)
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
    Field("id", "ID", "integer"),
    Field("title", "Title", width=50),
    Field("status", "Status", width=12),
    Field("due_date", "Due", "date"),
    Field("notice_id", "Notice ID", width=34),
    Field("notice_title", "Notice", width=50),
    Field("created_at", "Created (UTC)", "datetime"),
    Field("updated_at", "Updated (UTC)", "datetime"),
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
    Field("uei", "UEI", width=14),
    Field("cage_code", "CAGE", width=8),
    Field("legal_business_name", "Legal business name", width=50),
    Field("registration_status", "Status", width=12),
    Field("registration_date", "Registered", "date"),
    Field("expiration_date", "Expires", "date"),
    Field("primary_naics", "Primary NAICS", width=14),
    Field("naics_list", "NAICS codes", width=30),
)
