"""The SAM.gov simulator's data set: deterministic notices and entities, each derived from its index.

Nothing is stored per notice: notice ``i`` is computed from ``(seed, i)`` when a page needs it, so a data set of
100,000 notices costs nothing until it is read, and the same seed always gives the same records. Notices are
spread evenly over ``days`` days ending at ``end`` in index order, so the notices of a date range are an index
range found by bisection. What SAM.gov's real records do to a parser is reproduced on purpose (docs/samgov.md
"Records"): nulls where objects are expected, missing nested objects, empty strings, ``"Yes"``/``"No"``,
amounts as strings, amendments that reuse a ``solicitationNumber`` under a new ``noticeId``, and now and then
a record without a ``noticeId`` at all (:meth:`SamGovDataset.is_malformed`).

The state that changes (amended notices, notices posted later) lives in :class:`SamGovDataset` and is guarded by
the simulator's lock.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson

#: Notice type code (the ``ptype`` filter) and the ``type`` SAM.gov shows for it.
NOTICE_TYPES: tuple[tuple[str, str], ...] = (
    ("o", "Solicitation"),
    ("k", "Combined Synopsis/Solicitation"),
    ("p", "Presolicitation"),
    ("r", "Sources Sought"),
    ("a", "Award Notice"),
    ("s", "Special Notice"),
    ("u", "Justification"),
    ("i", "Intent to Bundle Requirements (DoD-Funded)"),
    ("g", "Sale of Surplus Property"),
)
NAICS: tuple[str, ...] = (
    "541512",
    "541511",
    "541330",
    "236220",
    "561210",
    "541611",
    "334111",
    "518210",
    "541519",
    "238210",
    "562910",
    "332994",
)
#: (fullParentPathName, fullParentPathCode)
AGENCIES: tuple[tuple[str, str], ...] = (
    ("DEPT OF DEFENSE.DEPT OF THE NAVY.NAVSEA.NAVSEA HQ", "017.1700.NAVSEA.N00024"),
    ("DEPT OF DEFENSE.DEPT OF THE ARMY.AMC.ACC.ACC-RI", "021.2100.W6QK.W52P1J"),
    ("DEPT OF DEFENSE.DEPT OF THE AIR FORCE.AFMC.AFLCMC", "057.5700.AFMC.FA8730"),
    ("HOMELAND SECURITY, DEPARTMENT OF.US CUSTOMS AND BORDER PROTECTION", "070.7014"),
    (
        "VETERANS AFFAIRS, DEPARTMENT OF.VETERANS AFFAIRS, DEPARTMENT OF.245-NETWORK CONTRACT OFFICE 5",
        "036.3600.245",
    ),
    ("GENERAL SERVICES ADMINISTRATION.FEDERAL ACQUISITION SERVICE", "047.4732"),
    ("HEALTH AND HUMAN SERVICES, DEPARTMENT OF.NATIONAL INSTITUTES OF HEALTH", "075.7529"),
    ("INTERIOR, DEPARTMENT OF THE.NATIONAL PARK SERVICE", "014.1443"),
)
#: (typeOfSetAside, typeOfSetAsideDescription); the first is "no set-aside".
SET_ASIDES: tuple[tuple[str | None, str | None], ...] = (
    (None, None),
    (None, None),
    ("SBA", "Total Small Business Set-Aside (FAR 19.5)"),
    ("8A", "8(a) Set-Aside (FAR 19.8)"),
    ("SDVOSBC", "Service-Disabled Veteran-Owned Small Business (SDVOSB) Set-Aside (FAR 19.14)"),
    ("WOSB", "Women-Owned Small Business (WOSB) Program Set-Aside (FAR 19.15)"),
    ("HZC", "HUBZone Set-Aside (FAR 19.13)"),
)
#: (state code, state name, city, zip)
PLACES: tuple[tuple[str, str, str, str], ...] = (
    ("VA", "Virginia", "Arlington", "22202"),
    ("MD", "Maryland", "Bethesda", "20892"),
    ("DC", "District of Columbia", "Washington", "20376"),
    ("TX", "Texas", "San Antonio", "78234"),
    ("CA", "California", "San Diego", "92136"),
    ("CO", "Colorado", "Denver", "80225"),
    ("OH", "Ohio", "Dayton", "45433"),
    ("WA", "Washington", "Bremerton", "98314"),
)
_WORDS = (
    "Network",
    "Janitorial",
    "Cybersecurity",
    "HVAC",
    "Software",
    "Construction",
    "Medical",
    "Logistics",
    "Training",
    "Data Center",
    "Facilities",
    "Engineering",
)
_KINDS = ("Services", "Support", "Maintenance", "Modernization", "Supplies", "Repair")
_UEI_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
#: One notice in this many has no noticeId (a record the platform must keep aside as invalid).
MALFORMED_EVERY = 499
#: One notice in this many is an amendment: it reuses the solicitationNumber of the notice three before it.
AMENDMENT_EVERY = 25


def _digest(seed: int, kind: str, index: int) -> bytes:
    return hashlib.blake2b(f"{seed}:{kind}:{index}".encode(), digest_size=32).digest()


@dataclass(frozen=True)
class Posted:
    """A notice posted after the data set was made (``post``): its index and date."""

    index: int
    posted: date


class SamGovDataset:
    """``size`` notices over ``days`` days up to ``end`` (inclusive), and their awardees as entities."""

    def __init__(
        self,
        *,
        size: int = 3000,
        seed: int = 7,
        end: date = date(2026, 11, 30),
        days: int = 120,
        entities: int | None = None,
        cache_records: int = 0,
    ) -> None:
        """``cache_records`` keeps that many encoded notices (about 1.3 kB each) so that a second walk of the same
        notices (a benchmark's re-sync) costs the simulator no generation; 0 keeps none."""
        if size < 0 or days < 1:
            raise ValueError("a data set needs size >= 0 and days >= 1")
        self.size = size
        self.seed = seed
        self.end = end
        self.days = days
        self.start = end - timedelta(days=days - 1)
        self.entity_count = entities if entities is not None else max(50, size // 20)
        #: Field changes applied over the generated record, by notice index (``amend``).
        self.overrides: dict[int, dict[str, Any]] = {}
        #: Notices posted later, newest last; SAM.gov lists them first.
        self.posted: list[Posted] = []
        self._id_index: dict[str, int] | None = None
        self._uei_index: dict[str, int] | None = None
        self.cache_records = cache_records
        self._encoded: dict[int, bytes] = {}

    # -- dates and ranges

    def posted_date(self, index: int) -> date:
        if index >= self.size:
            return next(p.posted for p in self.posted if p.index == index)
        return self.start + timedelta(days=index * self.days // max(self.size, 1))

    def index_range(self, posted_from: date, posted_to: date) -> range:
        """The base notices posted in ``[posted_from, posted_to]`` (without those posted later)."""
        indices = range(self.size)
        lo = bisect.bisect_left(indices, posted_from, key=self.posted_date)
        hi = bisect.bisect_right(indices, posted_to, key=self.posted_date)
        return range(lo, max(lo, hi))

    def query(self, posted_from: date, posted_to: date) -> list[int] | range:
        """Every notice index of the range in SAM.gov's order: notices posted later first (newest first)."""
        base = self.index_range(posted_from, posted_to)
        later = [p.index for p in reversed(self.posted) if posted_from <= p.posted <= posted_to]
        return [*later, *base] if later else base

    # -- notices

    def notice_id(self, index: int) -> str:
        return _digest(self.seed, "notice", index)[:16].hex()

    def is_malformed(self, index: int) -> bool:
        """Whether notice ``index`` is sent without a ``noticeId`` (the platform counts it invalid)."""
        return index % MALFORMED_EVERY == MALFORMED_EVERY - 1

    def valid_ids(self, posted_from: date, posted_to: date) -> list[str]:
        """The noticeIds a complete sync of the range must store (malformed records excluded)."""
        return [self.notice_id(i) for i in self.query(posted_from, posted_to) if not self.is_malformed(i)]

    def index_of(self, notice_id: str) -> int:
        if self._id_index is None:
            self._id_index = {self.notice_id(i): i for i in range(self.size)}
        for p in self.posted:
            self._id_index.setdefault(self.notice_id(p.index), p.index)
        try:
            return self._id_index[notice_id]
        except KeyError:
            raise KeyError(f"no notice {notice_id}") from None

    def amend(self, notice: str | int, **changes: Any) -> dict[str, Any]:
        """Change fields of one notice in place (same ``noticeId``); returns the record as now served."""
        index = notice if isinstance(notice, int) else self.index_of(notice)
        self.overrides.setdefault(index, {}).update(changes)
        self._encoded.pop(index, None)
        return self.notice(index)

    def post(self, posted: date, count: int = 1) -> list[str]:
        """Post ``count`` new notices dated ``posted``; they come first in results, shifting every page."""
        first = self.size + len(self.posted)
        self.posted += [Posted(first + k, posted) for k in range(count)]
        return [self.notice_id(first + k) for k in range(count)]

    def encoded(self, index: int) -> bytes:
        """Notice ``index`` as JSON bytes, from the cache when ``cache_records`` allows."""
        data = self._encoded.get(index)
        if data is None:
            data = orjson.dumps(self.notice(index))
            if len(self._encoded) < self.cache_records:
                self._encoded[index] = data
        return data

    def notice(self, index: int) -> dict[str, Any]:
        """The full record of notice ``index``, messy on purpose (see the module docstring)."""
        h = _digest(self.seed, "notice", index)
        nid = h[:16].hex()
        posted = self.posted_date(index)
        type_code, type_name = NOTICE_TYPES[h[16] % len(NOTICE_TYPES)]
        naics = NAICS[h[17] % len(NAICS)]
        agency, agency_code = AGENCIES[h[18] % len(AGENCIES)]
        aside_code, aside_desc = SET_ASIDES[h[19] % len(SET_ASIDES)]
        state, state_name, city, zipcode = PLACES[h[20] % len(PLACES)]
        mess = h[21]
        solicitation = self._solicitation(index)
        record: dict[str, Any] = {
            "noticeId": None if self.is_malformed(index) else nid,
            "title": f"{_WORDS[h[22] % len(_WORDS)]} {_KINDS[h[23] % len(_KINDS)]} #{index}",
            "solicitationNumber": "" if mess % 50 == 3 else solicitation,
            "fullParentPathName": agency,
            "fullParentPathCode": agency_code,
            "postedDate": posted.isoformat(),
            "type": type_name,
            "baseType": type_name,
            "archiveType": ("auto15", "autocustom", "manual")[h[24] % 3],
            "archiveDate": None if mess % 7 == 0 else (posted + timedelta(days=90)).isoformat(),
            "typeOfSetAsideDescription": ("" if mess % 2 else None) if aside_desc is None else aside_desc,
            "typeOfSetAside": aside_code,
            "responseDeadLine": self._deadline(posted, type_code, h),
            "naicsCode": "" if mess % 41 == 5 else naics,
            "naicsCodes": [] if mess % 41 == 5 else [naics, NAICS[h[25] % len(NAICS)]][: 1 + h[25] % 2],
            "classificationCode": "" if mess % 9 == 1 else f"R{400 + h[26] % 100}",
            "active": "No" if mess % 10 == 4 else "Yes",
            "award": self._award(index, posted, type_code, h),
            "pointOfContact": self._contacts(h),
            "description": f"https://api.sam.gov/prod/opportunities/v1/noticedesc?noticeid={nid}",
            "organizationType": "OFFICE",
            "officeAddress": None
            if mess % 13 == 2
            else {"zipcode": zipcode, "city": city.upper(), "countryCode": "USA", "state": state},
            "additionalInfoLink": None,
            "uiLink": f"https://sam.gov/opp/{nid}/view",
            "resourceLinks": None
            if h[27] % 3 == 0
            else [
                f"https://sam.gov/api/prod/opps/v3/opportunities/resources/files/{h[k : k + 4].hex()}/download"
                for k in range(28, 28 + h[27] % 3)
            ],
        }
        place = self._place(h, state, state_name, city, zipcode)
        if place is not ...:
            record["placeOfPerformance"] = place
        override = self.overrides.get(index)
        if override:
            record.update(override)
        return record

    def _solicitation(self, index: int) -> str:
        base = index - 3 if index % AMENDMENT_EVERY == 7 and index >= 3 else index
        prefix = ("N00024", "W52P1J", "FA8730", "70B0", "36C245", "47QTCA", "75N950", "140P")[base % 8]
        return f"{prefix}-26-{'RQ'[base % 2]}-{base:05d}"

    @staticmethod
    def _deadline(posted: date, type_code: str, h: bytes) -> str | None:
        if type_code in ("a", "s", "u") or h[30] % 11 == 0:
            return None
        due = posted + timedelta(days=14 + h[30] % 47)
        offset = ("-05:00", "-04:00", "-07:00", "Z")[h[31] % 4]
        return f"{due.isoformat()}T17:00:00{offset}"

    def _award(self, index: int, posted: date, type_code: str, h: bytes) -> dict[str, Any] | None:
        if type_code != "a":
            return None
        entity = h[28] % self.entity_count
        amount: str | None = f"{(h[29] * 9973 + h[30] * 131 + index) * 10}.{h[31] % 100:02d}"
        if h[26] % 17 == 0:
            amount = ""
        elif h[26] % 19 == 0:
            amount = None
        award: dict[str, Any] = {
            "date": posted.isoformat(),
            "number": f"{self._solicitation(index)}-0001",
            "amount": amount,
            "awardee": {"name": self.entity_name(entity), "ueiSAM": self.uei(entity)},
        }
        if h[27] % 4:
            state, state_name, city, zipcode = PLACES[h[27] % len(PLACES)]
            award["awardee"]["location"] = {
                "streetAddress": f"{100 + h[27]} Main St",
                "city": {"code": None, "name": city},
                "state": {"code": state, "name": state_name},
                "zip": zipcode,
                "country": {"code": "USA", "name": "UNITED STATES"},
            }
        return award

    @staticmethod
    def _contacts(h: bytes) -> list[dict[str, Any]] | None:
        pick = h[24] % 8
        if pick == 0:
            return None
        if pick == 1:
            return []
        return [
            {
                "fax": None,
                "type": "primary",
                "email": f"officer{h[25]}@contracting.example.gov",
                "phone": "" if pick == 2 else f"202-555-{1000 + h[26]:04d}",
                "title": None,
                "fullName": f"Contracting Officer {h[25]}",
            }
        ]

    @staticmethod
    def _place(h: bytes, state: str, state_name: str, city: str, zipcode: str) -> Any:
        """``...`` for a record without the key at all (SAM.gov omits it as often as it nulls it)."""
        pick = h[22] % 9
        if pick == 0:
            return ...
        if pick == 1:
            return None
        return {
            "city": None if pick == 2 else {"code": None, "name": city},
            "state": {"code": state, "name": state_name},
            "zip": zipcode if pick != 3 else "",
            "country": {"code": "USA", "name": "UNITED STATES"},
        }

    # -- entities

    def uei(self, entity: int) -> str:
        h = _digest(self.seed, "entity", entity)
        return "".join(_UEI_ALPHABET[b % len(_UEI_ALPHABET)] for b in h[:12])

    def entity_name(self, entity: int) -> str:
        h = _digest(self.seed, "entity", entity)
        return f"{_WORDS[h[12] % len(_WORDS)].upper()} {('SOLUTIONS', 'GROUP', 'LLC', 'INC', 'PARTNERS')[h[13] % 5]} {entity}"

    def entity_of_uei(self, uei: str) -> int | None:
        if self._uei_index is None:
            self._uei_index = {self.uei(e): e for e in range(self.entity_count)}
        return self._uei_index.get(uei)

    def iter_entities(self) -> Iterator[int]:
        return iter(range(self.entity_count))

    def entity(self, entity: int) -> dict[str, Any]:
        """The entity record as ``entityData`` lists it."""
        h = _digest(self.seed, "entity", entity)
        registered = date(2019, 1, 1) + timedelta(days=h[14] * 7)
        expires = self.end + timedelta(days=(h[15] % 400) - 100)
        active = expires >= self.end
        primary = NAICS[h[16] % len(NAICS)]
        state, _name, city, zipcode = PLACES[h[17] % len(PLACES)]
        return {
            "entityRegistration": {
                "samRegistered": "Yes",
                "ueiSAM": self.uei(entity),
                "cageCode": "".join(_UEI_ALPHABET[b % len(_UEI_ALPHABET)] for b in h[18:23]),
                "legalBusinessName": self.entity_name(entity),
                "dbaName": None if h[23] % 2 else "",
                "registrationStatus": "Active" if active else "Expired",
                "registrationDate": registered.isoformat(),
                "registrationExpirationDate": expires.isoformat(),
                "lastUpdateDate": (expires - timedelta(days=365)).isoformat(),
                "activationDate": registered.isoformat(),
            },
            "coreData": {
                "physicalAddress": {
                    "addressLine1": f"{100 + h[24]} Main St",
                    "city": city,
                    "stateOrProvinceCode": state,
                    "zipCode": zipcode,
                    "countryCode": "USA",
                },
                "entityInformation": {
                    "entityURL": None if h[25] % 3 == 0 else f"https://www.example.com/{entity}"
                },
            },
            "assertions": {
                "goodsAndServices": {
                    "primaryNaics": primary,
                    "naicsList": [{"naicsCode": primary, "naicsDescription": None, "sbaSmallBusiness": "Y"}],
                }
            },
        }

    def entity_status_code(self, entity: int) -> str:
        return "A" if self.entity(entity)["entityRegistration"]["registrationStatus"] == "Active" else "E"
