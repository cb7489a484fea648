"""The job catalogue: every actor's name, queue, argument schema and limits, without importing any actor.

Both sides use it: the enqueue helpers validate arguments at the call site, and the actors validate the same
schema when a message arrives (so a message written by hand or by an older release is checked too).

It lists only actors that exist in ``actors/`` (``tests/unit/test_catalogue.py`` checks it): a job the
catalogue accepted but no worker knows would be dead-lettered as an unknown actor, long after the call site
moved on. A new actor's spec is registered here in the same change as the actor.
"""

from __future__ import annotations

from app.jobs.documents import ATTACHMENT_JOBS, REPORT_JOBS
from app.jobs.email import EMAIL_JOBS
from app.jobs.spec import JobArgs, JobSpec
from app.jobs.sync import SYNC_JOBS

#: actor name -> spec, for every actor of the platform.
SPECS: dict[str, JobSpec] = {
    spec.actor: spec for spec in (*EMAIL_JOBS, *REPORT_JOBS, *ATTACHMENT_JOBS, *SYNC_JOBS)
}


def spec_for(actor: str) -> JobSpec:
    """The spec of ``actor``; :class:`~app.errors.InvalidJob` for a name the platform does not know."""
    from app.errors import InvalidJob

    try:
        return SPECS[actor]
    except KeyError:
        raise InvalidJob(f"unknown actor {actor!r}; known: {', '.join(sorted(SPECS))}") from None


__all__ = ["SPECS", "JobArgs", "JobSpec", "spec_for"]
