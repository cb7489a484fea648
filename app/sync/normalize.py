"""SAM.gov records to table rows: the normalized columns beside the raw payload, and the payload's hash.

SAM.gov's records are messy (docs/samgov.md): strings where numbers are meant (``award.amount``, ``active``
as ``"Yes"``/``"No"``), nulls and empty strings where objects are expected. Normalization is lenient about the
optional fields (a missing office address is simply ``None``) and strict only where a wrong value would store
a wrong fact: an id that is not one, a date or a deadline or an amount that does not parse. Such a record is
:class:`Rejected` with its reason and kept aside by the caller; it never fails its page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

#: A SAM.gov notice id: 32 hexadecimal characters.
NOTICE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
#: A Unique Entity ID: 12 upper-case letters and digits.
UEI = re.compile(r"^[A-Z0-9]{12}$")

#: The ``opportunities`` columns the upsert writes, in the order of :meth:`OpportunityRow.values`.
OPPORTUNITY_COLUMNS: tuple[str, ...] = (
    "notice_id",
    "title",
    "solicitation_number",
    "agency_path",
    "agency_code",
    "agency_names",
    "department",
    "posted_date",
    "notice_type",
    "base_type",
    "archive_type",
    "archive_date",
    "set_aside_code",
    "set_aside_description",
    "response_deadline",
    "naics_code",
    "naics_codes",
    "classification_code",
    "active",
    "award_amount",
    "awardee_name",
    "awardee_uei",
    "place_state",
    "ui_link",
    "resource_links",
    "raw",
    "payload_hash",
)


class Rejected(ValueError):
    """A record that cannot be stored as it is; the message is the reason kept with it."""


@dataclass(frozen=True)
class OpportunityRow:
    """One notice, ready for the upsert: ``values()`` follows :data:`OPPORTUNITY_COLUMNS`."""

    notice_id: str
    payload_hash: str
    columns: dict[str, Any]
    #: The payload's canonical JSON, the text the hash is of: what COPY sends for ``raw`` (no second encoding).
    raw_json: str = ""

    def values(self) -> tuple[Any, ...]:
        return tuple(self.columns[name] for name in OPPORTUNITY_COLUMNS)


@dataclass(frozen=True)
class EntityRow:
    uei: str
    payload_hash: str
    columns: dict[str, Any]


def canonical_json(record: dict[str, Any]) -> bytes:
    """The record as compact JSON with sorted keys: equal payloads give equal bytes whatever their key order."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)


def payload_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the record's canonical JSON."""
    return hashlib.sha256(canonical_json(record)).hexdigest()


def opportunity_row(
    record: object, *, canonical: bytes | None = None, digest: str | None = None
) -> OpportunityRow:
    """Normalize one opportunity record; raises :class:`Rejected` naming the first field that is wrong.

    ``canonical`` is the record's :func:`canonical_json` and ``digest`` its SHA-256 when the caller has them
    already (it hashed first)."""
    if not isinstance(record, dict):
        raise Rejected(f"record is {type(record).__name__}, not an object")
    notice_id = record.get("noticeId")
    if not isinstance(notice_id, str) or not NOTICE_ID.match(notice_id):
        raise Rejected("noticeId is missing or not 32 hexadecimal characters")
    posted = _date(record.get("postedDate"), "postedDate")
    award = _object(record.get("award"))
    awardee = _object(award.get("awardee"))
    place = _object(record.get("placeOfPerformance"))
    path = _text(record.get("fullParentPathName"))
    names = [part.strip() for part in path.split(".") if part.strip()] if path else []
    naics_codes = [str(code) for code in (record.get("naicsCodes") or []) if code not in (None, "")]
    naics = _text(record.get("naicsCode")) or (naics_codes[0] if naics_codes else None)
    if naics and naics not in naics_codes:
        naics_codes.insert(0, naics)
    uei = _text(awardee.get("ueiSAM"))
    columns: dict[str, Any] = {
        "notice_id": notice_id.lower(),
        "title": _text(record.get("title")) or "",
        "solicitation_number": _clip(_text(record.get("solicitationNumber")), 128),
        "agency_path": path,
        "agency_code": _clip(_text(record.get("fullParentPathCode")), 128),
        "agency_names": names,
        "department": _clip(names[0], 256) if names else None,
        "posted_date": posted,
        "notice_type": _clip(_text(record.get("type")), 64),
        "base_type": _clip(_text(record.get("baseType")), 64),
        "archive_type": _clip(_text(record.get("archiveType")), 32),
        "archive_date": _date(record.get("archiveDate"), "archiveDate", required=False),
        "set_aside_code": _clip(_text(record.get("typeOfSetAside")), 32),
        "set_aside_description": _clip(_text(record.get("typeOfSetAsideDescription")), 256),
        "response_deadline": _deadline(record.get("responseDeadLine")),
        "naics_code": _clip(naics, 16),
        "naics_codes": naics_codes,
        "classification_code": _clip(_text(record.get("classificationCode")), 16),
        "active": _active(record.get("active")),
        "award_amount": _amount(award.get("amount")),
        "awardee_name": _clip(_text(awardee.get("name")), 256),
        "awardee_uei": uei if uei and UEI.match(uei) else None,
        "place_state": _clip(_text(_object(place.get("state")).get("code")), 8),
        "ui_link": _text(record.get("uiLink")),
        "resource_links": [str(link) for link in (record.get("resourceLinks") or []) if link],
        "raw": record,
    }
    canonical = canonical if canonical is not None else canonical_json(record)
    digest = digest or hashlib.sha256(canonical).hexdigest()
    columns["payload_hash"] = digest
    return OpportunityRow(
        notice_id=columns["notice_id"], payload_hash=digest, columns=columns, raw_json=canonical.decode()
    )


def entity_row(record: object) -> EntityRow:
    """Normalize one entity record (``entityRegistration`` + ``assertions``); raises :class:`Rejected`."""
    if not isinstance(record, dict):
        raise Rejected(f"record is {type(record).__name__}, not an object")
    registration = _object(record.get("entityRegistration"))
    uei = _text(registration.get("ueiSAM"))
    if not uei or not UEI.match(uei):
        raise Rejected("entityRegistration.ueiSAM is missing or not a 12-character UEI")
    goods = _object(_object(record.get("assertions")).get("goodsAndServices"))
    naics_list = []
    for item in goods.get("naicsList") or []:
        code = item.get("naicsCode") if isinstance(item, dict) else item
        if code not in (None, ""):
            naics_list.append(str(code))
    columns: dict[str, Any] = {
        "uei": uei,
        "cage_code": _clip(_text(registration.get("cageCode")), 8),
        "legal_business_name": _clip(_text(registration.get("legalBusinessName")), 300) or "",
        "registration_status": _clip(_text(registration.get("registrationStatus")), 32),
        "registration_date": _date(registration.get("registrationDate"), "registrationDate", required=False),
        "expiration_date": _date(
            registration.get("registrationExpirationDate"), "registrationExpirationDate", required=False
        ),
        "primary_naics": _clip(_text(goods.get("primaryNaics")), 16),
        "naics_list": naics_list,
        "raw": record,
    }
    digest = payload_hash(record)
    columns["payload_hash"] = digest
    return EntityRow(uei=uei, payload_hash=digest, columns=columns)


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if value is not None else None


def _date(value: object, name: str, *, required: bool = True) -> dt.date | None:
    text = _text(value)
    if text is None:
        if required:
            raise Rejected(f"{name} is missing")
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise Rejected(f"{name} {text[:40]!r} is not a YYYY-MM-DD date") from None


def _deadline(value: object) -> dt.datetime | None:
    """``responseDeadLine`` as an aware UTC datetime; a time without an offset is refused, not guessed."""
    text = _text(value)
    if text is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"responseDeadLine {text[:40]!r} is not an ISO-8601 date-time") from None
    if parsed.tzinfo is None:
        if len(text) == 10:  # a bare date: the end of that day is the deadline SAM.gov shows, in UTC
            return dt.datetime.combine(parsed.date(), dt.time(23, 59, 59), tzinfo=dt.UTC)
        raise Rejected(f"responseDeadLine {text[:40]!r} has no UTC offset")
    return parsed.astimezone(dt.UTC)


def _active(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = (_text(value) or "yes").lower()
    return text not in ("no", "false", "n", "0", "inactive")


def _amount(value: object) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise Rejected("award.amount is a boolean")
    text = str(value).strip().replace(",", "").removeprefix("$")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise Rejected(f"award.amount {text[:40]!r} is not a number") from None
    if not amount.is_finite() or abs(amount) >= Decimal("1e16"):
        raise Rejected(f"award.amount {text[:40]!r} is out of range")
    return amount.quantize(Decimal("0.01"))
