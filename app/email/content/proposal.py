"""Proposal notifications: one email per recipient (the owner and every collaborator), each with its own key,
so a retry after a partial failure sends only to those who did not get it yet."""

from __future__ import annotations

from sqlalchemy.orm import Session, selectinload

from app.db.models import Proposal, User
from app.email import kinds
from app.email.content.clock import zone
from app.email.content.views import OpportunityView, ProposalView
from app.email.delivery import EmailJob
from app.email.recipients import Recipient
from app.errors import PermanentError
from app.jobs.email import proposal_key


def proposal_jobs(
    session: Session, *, proposal_id: int, event: str, status: str | None = None
) -> list[EmailJob]:
    proposal = session.get(
        Proposal, proposal_id, options=[selectinload(Proposal.owner), selectinload(Proposal.collaborators)]
    )
    if proposal is None:
        raise PermanentError(f"proposal {proposal_id} does not exist")
    occurrence = _occurrence(proposal, event, status)
    view = ProposalView.of(proposal)
    return [
        EmailJob(
            kind=kinds.PROPOSAL,
            key=proposal_key(proposal_id, event, user.id, occurrence),
            recipient=Recipient.of(user),
            context={
                "event": event,
                "proposal": view,
                "new_status": (status or proposal.status).replace("_", " "),
                "is_owner": user.id == proposal.owner_id,
                "owner_name": proposal.owner.name,
                "opportunity": OpportunityView.of(proposal.opportunity, zone(user.timezone))
                if proposal.opportunity is not None
                else None,
            },
        )
        for user in recipients(proposal)
    ]


def recipients(proposal: Proposal) -> list[User]:
    """The owner first, then collaborators, each once."""
    seen: dict[int, User] = {proposal.owner.id: proposal.owner}
    for user in proposal.collaborators:
        seen.setdefault(user.id, user)
    return list(seen.values())


def _occurrence(proposal: Proposal, event: str, status: str | None) -> str | None:
    if event == "status_changed":
        return status or proposal.status
    if event == "deadline_approaching":
        return proposal.due_date.isoformat() if proposal.due_date else "undated"
    return None
