"""The leader's loop: fire what is due, catch up after a takeover, keep house.

Why not APScheduler's own scheduler loop (``BlockingScheduler``): its job store is in memory, so it knows neither
which fires another replica already sent nor which fell while no replica led, and it takes "now" from the system
clock, which a DST test cannot move. The durable record is ``schedule_runs``; the loop asks APScheduler's
triggers for fire times after each schedule's *cursor* (the last fire it handled), and sleeps until the earliest
next one.

On becoming leader (start, takeover, or Redis coming back) each cursor is loaded from the database: the latest
non-manual fire recorded, or the last resume, or, for a schedule that never fired, "now minus its grace time".
Fires after the cursor that are due are then handled at once, which is the misfire policy: the latest one inside
the grace time runs (coalesced: any earlier ones inside the grace time are recorded ``missed`` as coalesced), and
older ones are recorded ``missed`` (metric ``worker_schedule_fires_total{status="missed"}``). Pause is read from
the database whenever a fire is due, so a pause by any process holds on the next fire, without restart.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import redis
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.db.models import ScheduleRun, ScheduleState
from app.db.session import session_scope
from app.errors import DatabaseBusy
from app.scheduler.clock import Clock
from app.scheduler.config import ResolvedSchedule
from app.scheduler.fire import fire, record_missed, retry_unsent
from app.scheduler.leader import STANDBY_POLL_S, LeaderLock

if TYPE_CHECKING:
    from app.scheduler.relay import LeaderRelay

logger = logging.getLogger(__name__)

#: Longest sleep of the loop: a standby's lock attempts and the health timestamp need it awake.
MAX_SLEEP_S = 1.0
#: Seconds between the leader's retries of fires whose publish failed.
RETRY_EVERY_S = 5.0
#: What a step may meet and survive: the database or Redis failing for a while.
STEP_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, redis.RedisError, DatabaseBusy, OSError)
#: Late fires recorded one row each per schedule and catch-up, oldest first (a longer outage is only logged).
MAX_MISSED_ROWS = 100


class Engine:
    """Fires ``schedules`` while ``lock`` says this replica leads."""

    def __init__(
        self,
        schedules: Sequence[ResolvedSchedule],
        *,
        lock: LeaderLock,
        clock: Clock,
        replica: str,
        dlq_sync_interval_s: float | None = None,
        relay: LeaderRelay | None = None,
    ) -> None:
        self.schedules = [s for s in schedules if s.enabled]
        self.lock = lock
        self.clock = clock
        self.replica = replica
        self.dlq_sync_interval_s = dlq_sync_interval_s
        #: The outbox relay, run while this replica leads (``SCHEDULER_RUN_RELAY``).
        self.relay = relay
        self.cursors: dict[str, dt.datetime] = {}
        #: Cursors are loaded (this replica leads and knows where each schedule stands).
        self._leading = False
        #: Schedules whose cursor is not from the database (never fired nor resumed).
        self._fresh: set[str] = set()
        #: Housekeeping times are on the engine's clock (a ManualClock moves them in tests).
        self._next_retry: dt.datetime | None = None
        self._next_dlq_sync: dt.datetime | None = None
        self._dlq_thread: threading.Thread | None = None
        #: Wall time of the last loop iteration that completed, for ``/health``.
        self.last_step: dt.datetime | None = None

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set, then release leadership at once."""
        try:
            while not stop.is_set():
                try:
                    delay = self.step()
                except STEP_ERRORS:
                    # The database or Redis failed mid-step: nothing was lost (cursors advance only past fires
                    # that were recorded), so log and try again shortly.
                    logger.exception("scheduler step failed", extra={"action": "scheduler_step_failed"})
                    delay = MAX_SLEEP_S
                if self.clock.wait(delay, stop):
                    break
        finally:
            if self.relay is not None:
                self.relay.stop()  # before the release: the next leader's relay starts after this one ended
            self.lock.release()

    def step(self) -> float:
        """One iteration: refresh the lock; as leader, handle due fires. Returns seconds until the next one."""
        leading = self.lock.refresh()
        if self.relay is not None:
            self.relay.follow(leading)
        now = self.clock.now()
        if not leading:
            self._leading = False
            self.cursors.clear()
            self.last_step = now
            return min(STANDBY_POLL_S, self.lock.seconds_to_next_attempt() or STANDBY_POLL_S)
        if not self._leading:
            self.cursors = self._load_cursors(now)
            self._leading = True
            self._next_retry = now
            self._next_dlq_sync = now
        self._fire_due(now)
        self._housekeeping(now)
        self.last_step = now
        return self._sleep_after(self.clock.now())

    def _fire_due(self, now: dt.datetime) -> None:
        paused: set[str] | None = None
        for schedule in self.schedules:
            due = schedule.next_after(self.cursors[schedule.name])
            if due is None or due > now:
                continue
            if paused is None:
                paused = _paused_names()
            if schedule.name in paused:
                logger.info(
                    "schedule paused; fire not sent",
                    extra={
                        "action": "schedule_paused_skip",
                        "schedule": schedule.name,
                        "fire_time": due.isoformat(),
                    },
                )
                self.cursors[schedule.name] = now
                continue
            if not self.lock.leading():
                return  # the lease ran out during this step: not one more fire
            self._handle(schedule, now)

    def _handle(self, schedule: ResolvedSchedule, now: dt.datetime) -> None:
        """The fires due since the cursor: the latest inside the grace time runs, the others are recorded.

        Only the grace window is walked in full; older fires are walked up to :data:`MAX_MISSED_ROWS`, so a
        cursor months old (an every-second schedule re-enabled) costs no more than a normal catch-up.
        """
        cursor = self.cursors[schedule.name]
        grace = dt.timedelta(seconds=schedule.misfire_grace_s)
        edge = now - grace - dt.timedelta(microseconds=1)  # fires at or before it are late
        late = schedule.fires_between(cursor, edge, limit=MAX_MISSED_ROWS + 1) if cursor < edge else []
        if late:
            record_missed(
                schedule,
                late[:MAX_MISSED_ROWS],
                reason=f"more than its grace time ({grace.total_seconds():g} s) late",
                now=now,
                replica=self.replica,
            )
            if len(late) > MAX_MISSED_ROWS:
                logger.warning(
                    "more missed fires than recorded",
                    extra={
                        "action": "schedule_missed_unrecorded",
                        "schedule": schedule.name,
                        "recorded": MAX_MISSED_ROWS,
                    },
                )
        inside = schedule.fires_between(max(cursor, edge), now)
        if inside:
            coalesced, latest = inside[:-1], inside[-1]
            # A schedule with no history starts "its grace time ago": fires before that were nobody's to send.
            if coalesced and schedule.name not in self._fresh:
                record_missed(
                    schedule,
                    coalesced[-MAX_MISSED_ROWS:],
                    reason=f"coalesced into the fire of {latest.isoformat()}",
                    now=now,
                    replica=self.replica,
                )
            fire(schedule, latest, now=now, replica=self.replica, clock=self.clock)
        self.cursors[schedule.name] = now
        self._fresh.discard(schedule.name)

    def _housekeeping(self, now: dt.datetime) -> None:
        if self._next_retry is not None and now >= self._next_retry:
            self._next_retry = now + dt.timedelta(seconds=RETRY_EVERY_S)
            retry_unsent(self.schedules, now=now, replica=self.replica, clock=self.clock)
        interval = self.dlq_sync_interval_s
        if interval and self._next_dlq_sync is not None and now >= self._next_dlq_sync:
            self._next_dlq_sync = now + dt.timedelta(seconds=interval)
            if self._dlq_thread is None or not self._dlq_thread.is_alive():
                self._dlq_thread = threading.Thread(
                    target=_sync_dead_letters, name="scheduler-dlq-sync", daemon=True
                )
                self._dlq_thread.start()

    def _sleep_after(self, now: dt.datetime) -> float:
        upcoming = [n for s in self.schedules if (n := s.next_after(self.cursors[s.name])) is not None]
        until_fire = (min(upcoming) - now).total_seconds() if upcoming else MAX_SLEEP_S
        return max(0.0, min(until_fire, self.lock.seconds_to_next_attempt(), MAX_SLEEP_S))

    def _load_cursors(self, now: dt.datetime) -> dict[str, dt.datetime]:
        """Where each schedule's catch-up starts on becoming leader (see the module's docstring)."""
        with session_scope() as session:
            last = dict(
                session.execute(
                    select(ScheduleRun.name, func.max(ScheduleRun.fire_time))
                    .where(ScheduleRun.manual.is_(False))
                    .group_by(ScheduleRun.name)
                ).all()
            )
            resumed = dict(
                session.execute(
                    select(ScheduleState.name, ScheduleState.resumed_at).where(
                        ScheduleState.resumed_at.is_not(None)
                    )
                ).all()
            )
        cursors: dict[str, dt.datetime] = {}
        self._fresh = set()
        for schedule in self.schedules:
            known = [t for t in (last.get(schedule.name), resumed.get(schedule.name)) if t is not None]
            if known:
                cursors[schedule.name] = max(known)
            else:
                cursors[schedule.name] = now - dt.timedelta(seconds=schedule.misfire_grace_s)
                self._fresh.add(schedule.name)
        logger.info(
            "leading: catch-up from the recorded fires",
            extra={"action": "scheduler_cursors", "cursors": {k: v.isoformat() for k, v in cursors.items()}},
        )
        return cursors


def _paused_names() -> set[str]:
    with session_scope() as session:
        return set(session.scalars(select(ScheduleState.name).where(ScheduleState.paused.is_(True))))


def _sync_dead_letters() -> None:
    """``jobs dlq sync`` from the leader: Dramatiq's dead-letter queues into the archive."""
    from app.dead_letters import sync_from_xq

    try:
        imported = sync_from_xq()
    except STEP_ERRORS:
        logger.exception("dead-letter sync failed", extra={"action": "dlq_sync_failed"})
        return
    if imported:
        logger.info("dead letters imported from the XQ", extra={"action": "dlq_sync", "imported": imported})
