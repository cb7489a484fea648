"""Contract-shaped SAM.gov records built by the sync tests (docs/samgov.md), messy shapes included."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any


def notice_id(n: int) -> str:
    return hashlib.md5(f"notice-{n}".encode()).hexdigest()


def uei(n: int) -> str:
    return f"UEI{n:09d}"


def opportunity(n: int, *, posted: dt.date | None = None, **overrides: Any) -> dict[str, Any]:
    """Notice number ``n``: every third one is awarded, every fifth has nulls where objects are expected."""
    posted = posted or dt.date(2026, 11, 1) + dt.timedelta(days=n % 30)
    record: dict[str, Any] = {
        "noticeId": notice_id(n),
        "title": f"Notice {n}",
        "solicitationNumber": f"SOL-{n // 2:05d}",
        "fullParentPathName": "DEPT OF DEFENSE.DEPT OF THE ARMY.W6QK ACC-APG"
        if n % 2
        else "GENERAL SERVICES ADMINISTRATION.FEDERAL ACQUISITION SERVICE",
        "fullParentPathCode": "097.2100.W6QK",
        "postedDate": posted.isoformat(),
        "type": "Solicitation",
        "baseType": "Solicitation",
        "archiveType": "autocustom",
        "archiveDate": (posted + dt.timedelta(days=60)).isoformat(),
        "typeOfSetAsideDescription": "Total Small Business Set-Aside (FAR 19.5)" if n % 4 == 0 else None,
        "typeOfSetAside": "SBA" if n % 4 == 0 else None,
        "responseDeadLine": f"{(posted + dt.timedelta(days=20)).isoformat()}T17:00:00-05:00",
        "naicsCode": ["541512", "236220", "336411"][n % 3],
        "naicsCodes": [["541512", "236220", "336411"][n % 3]],
        "classificationCode": "D302",
        "active": "Yes" if n % 7 else "No",
        "award": None
        if n % 3
        else {
            "amount": f"{1000 + n}.50",
            "date": posted.isoformat(),
            "number": f"AW-{n}",
            "awardee": {"name": f"Awardee {n}", "ueiSAM": uei(n), "location": None},
        },
        "pointOfContact": None if n % 5 == 0 else [{"email": "co@example.gov"}],
        "description": f"https://api.sam.gov/prod/opportunities/v1/noticedesc?noticeid={notice_id(n)}",
        "organizationType": "OFFICE",
        "officeAddress": None if n % 5 == 0 else {"city": "ABERDEEN", "state": "MD"},
        "placeOfPerformance": None if n % 5 == 0 else {"state": {"code": "MD", "name": "Maryland"}},
        "additionalInfoLink": None,
        "uiLink": f"https://sam.gov/opp/{notice_id(n)}/view",
        "resourceLinks": None if n % 2 else [f"https://sam.gov/files/{n}.pdf"],
    }
    record.update(overrides)
    return record


def entity(n: int, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "entityRegistration": {
            "ueiSAM": uei(n),
            "cageCode": f"C{n:04d}",
            "legalBusinessName": f"Entity {n} LLC",
            "registrationStatus": "Active",
            "registrationDate": "2021-01-04",
            "registrationExpirationDate": "2027-12-31",
            "lastUpdateDate": "2026-01-01",
        },
        "coreData": {},
        "assertions": {
            "goodsAndServices": {"primaryNaics": "541512", "naicsList": [{"naicsCode": "541512"}]}
        },
    }
    record.update(overrides)
    return record
