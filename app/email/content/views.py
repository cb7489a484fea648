"""Plain, detached values the templates show: no ORM object (and no lazy load) reaches a template."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from app.db.models import Opportunity, Proposal
from app.email import links
from app.email.content.clock import format_local


@dataclass(frozen=True)
class OpportunityView:
    notice_id: str
    title: str
    agency: str
    deadline: str
    set_aside: str
    url: str

    @classmethod
    def of(cls, opportunity: Opportunity, tz: ZoneInfo) -> OpportunityView:
        return cls(
            notice_id=opportunity.notice_id,
            title=opportunity.title or opportunity.notice_id,
            agency=(opportunity.agency_path or "").split(".")[0],
            deadline=format_local(opportunity.response_deadline, tz),
            set_aside=opportunity.set_aside_description or opportunity.set_aside_code or "",
            url=links.opportunity(opportunity.notice_id),
        )


@dataclass(frozen=True)
class ProposalView:
    id: int
    title: str
    status: str
    due_date: dt.date | None
    url: str

    @property
    def status_label(self) -> str:
        return self.status.replace("_", " ")

    @classmethod
    def of(cls, proposal: Proposal) -> ProposalView:
        return cls(
            id=proposal.id,
            title=proposal.title,
            status=proposal.status,
            due_date=proposal.due_date,
            url=links.proposal(proposal.id),
        )
