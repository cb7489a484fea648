"""``SCHEDULES_FILE``: APScheduler's own trigger fields override the table; a bad file is one line naming the
schedule and the field. (No services needed; it sits with the scheduler's other tests.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from app.scheduler.config import ScheduleFileError, load_schedules
from app.scheduler.fire import fire_key

pytestmark = pytest.mark.integration


def _load(tmp_path: Path, text: str, zone: str = "UTC") -> dict[str, object]:
    path = tmp_path / "schedules.toml"
    path.write_text(text)
    return {s.name: s for s in load_schedules(zone, path)}


def test_overrides_replace_merge_disable_and_regrace(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        '[cleanup]\ntrigger = "interval"\nseconds = 30\n\n[entity-sync]\nhour = 4\n\n'
        "[weekly-reports]\nenabled = false\n\n[sam-sync]\nmisfire_grace_time = 10\n",
    )
    cleanup, entity, weekly, sam = (
        loaded[n] for n in ("cleanup", "entity-sync", "weekly-reports", "sam-sync")
    )
    moment = dt.datetime(2026, 12, 7, 10, 0, 10, tzinfo=dt.UTC)
    # an interval counts from a fixed anchor, so every replica computes the same fire times
    assert cleanup.next_after(moment) == dt.datetime(2026, 12, 7, 10, 0, 30, tzinfo=dt.UTC)  # type: ignore[attr-defined]
    assert entity.next_after(moment) == dt.datetime(2026, 12, 8, 4, tzinfo=dt.UTC)  # type: ignore[attr-defined]
    assert weekly.enabled is False and sam.misfire_grace_s == 10  # type: ignore[attr-defined]
    assert (
        fire_key("cleanup", dt.datetime(2026, 12, 7, 2, tzinfo=dt.UTC))
        == "schedule:cleanup:2026-12-07T02:00:00Z"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[cleanup]\ntrigger = "interval"\nsecond = 30\n',
            "[cleanup] second: is not a field of the interval trigger",
        ),
        ("[cleanup]\nhour = 25\n", "[cleanup] hour:"),
        ('[weekly-reports]\ntrigger = "weekly"\n', "[weekly-reports] trigger:"),
        ('[sam-sync]\ntrigger = "interval"\nminutes = "often"\n', "[sam-sync] minutes:"),
        ("[cleanup]\nenabled = 1\n", "[cleanup] enabled:"),
        ("[cleanup]\nmisfire_grace_time = -5\n", "[cleanup] misfire_grace_time:"),
        ('[cleanup]\ntrigger = "cron"\njitter = 5\n', "[cleanup] jitter:"),
        ("[nightly]\nenabled = false\n", "[nightly]: no such schedule"),
        ("[cleanup\n", "is not TOML"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_schedule_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ScheduleFileError) as caught:
        _load(tmp_path, text)
    message = str(caught.value)
    assert expected in message and "\n" not in message and message.startswith("invalid SCHEDULES_FILE")


def test_arguments_are_built_from_the_fire_time_in_the_tables_zone() -> None:
    tokyo = {s.name: s for s in load_schedules("Asia/Tokyo", None)}
    # Monday 00:30 in Tokyo is still Sunday in UTC: the week is the local one (2026-W50 starts Monday 7 Dec)
    monday = dt.datetime(2026, 12, 6, 15, 30, tzinfo=dt.UTC)
    assert tokyo["weekly-reports"].arguments(monday) == {"week": "2026-W50"}
    assert tokyo["daily-reminders"].arguments(monday) == {"at": monday}
    assert tokyo["sam-sync"].arguments(monday) == {}
