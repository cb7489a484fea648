"""Realistic, deterministic demo data for ``jobs demo seed`` and ``jobs dev``.

Everything is drawn from one ``random.Random(seed)`` and dated relative to ``now``, so the same seed on an
empty database gives the same rows (tests pass a fixed ``now``). Rows are bulk-inserted (an INSERT per table),
so a thousand users take about a second.

Seeding again never crashes: users always get fresh unique emails (a numeric suffix on collisions), and the
SAM.gov records (opportunities, entities) that already exist are kept as they are, as the sync would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from app.db.models import Entity, Opportunity, Proposal, SavedOpportunity, User, proposal_collaborators
from app.db.types import utcnow

# ------------------------------------------------------------------------------------------ vocabularies

#: First names, some with diacritics or from non-Latin traditions (the emails and PDFs must cope).
FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Sandra", "Kevin", "Ashley",
    "José", "María", "Zoë", "Renée", "François", "Björn", "Søren", "Siobhán", "Łukasz", "Ólafur",
    "Chloé", "Nuño", "Dvořák", "Ngozi", "Wei", "Priya", "Aiyana", "Hana", "Mateus", "Ana",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Nguyễn", "Peña", "Müller", "O'Brien", "Ibáñez", "Kowalczyk", "Þórsson", "Gómez", "Çelik",
    "Okafor", "Zhang", "Patel", "Yamamoto", "Kim", "Haddad", "Novák", "Fernández", "Dubois", "Schröder",
)  # fmt: skip
#: Letters NFKD does not decompose to ASCII.
TRANSLITERATE = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "đ": "d", "Đ": "D", "þ": "th", "Þ": "Th", "æ": "ae"}
)
EMAIL_DOMAINS = ("example.com", "example.org")

#: IANA zones weighted towards the US (reminders go out at 09:00 in each user's zone).
TIME_ZONES: tuple[tuple[str, int], ...] = (
    ("America/New_York", 30), ("America/Chicago", 18), ("America/Denver", 8), ("America/Phoenix", 5),
    ("America/Los_Angeles", 20), ("America/Anchorage", 2), ("Pacific/Honolulu", 2), ("America/Detroit", 3),
    ("America/Indiana/Indianapolis", 2), ("America/Puerto_Rico", 2), ("Pacific/Guam", 1), ("UTC", 1),
    ("Europe/London", 2), ("Europe/Berlin", 1), ("Asia/Tokyo", 1), ("Asia/Kolkata", 1),
    ("Australia/Sydney", 1),
)  # fmt: skip

#: Real NAICS codes common in federal contracting, with a title to build notice titles from.
NAICS: dict[str, str] = {
    "541511": "Custom Computer Programming Services",
    "541512": "Computer Systems Design Services",
    "541513": "Computer Facilities Management Services",
    "541519": "Other Computer Related Services",
    "541330": "Engineering Services",
    "541611": "Administrative Management Consulting Services",
    "541715": "Research and Development in the Physical, Engineering, and Life Sciences",
    "236220": "Commercial and Institutional Building Construction",
    "237310": "Highway, Street, and Bridge Construction",
    "238220": "Plumbing, Heating, and Air-Conditioning Contractors",
    "561210": "Facilities Support Services",
    "561612": "Security Guards and Patrol Services",
    "518210": "Computing Infrastructure Providers, Data Processing, Web Hosting",
    "336411": "Aircraft Manufacturing",
    "334511": "Search, Detection, Navigation, Guidance, Aeronautical Systems",
    "621111": "Offices of Physicians (except Mental Health Specialists)",
}
KEYWORDS = (
    "cybersecurity", "cloud migration", "zero trust", "data analytics", "machine learning", "help desk",
    "network modernization", "facility maintenance", "janitorial", "HVAC", "construction", "logistics",
    "training", "software development", "DevSecOps", "telehealth", "geospatial", "program management",
)  # fmt: skip
#: SAM.gov set-aside codes and their descriptions.
SET_ASIDES: dict[str, str] = {
    "SBA": "Total Small Business Set-Aside (FAR 19.5)",
    "8A": "8(a) Set-Aside (FAR 19.8)",
    "WOSB": "Women-Owned Small Business (WOSB) Program Set-Aside (FAR 19.15)",
    "SDVOSBC": "Service-Disabled Veteran-Owned Small Business (SDVOSB) Set-Aside (FAR 19.14)",
    "HZC": "Historically Underutilized Business (HUBZone) Set-Aside (FAR 19.13)",
}
EMAIL_KINDS = ("welcome", "reminder", "proposal", "weekly")

#: (fullParentPathName, fullParentPathCode) of realistic contracting offices.
AGENCIES = (
    ("DEPT OF DEFENSE.DEPT OF THE ARMY.AMC.ACC.ACC-RSA", "097.2100.W6QK.W31P"),
    ("DEPT OF DEFENSE.DEPT OF THE NAVY.NAVSEA.NSWC DAHLGREN", "097.1700.N00024.N00178"),
    ("DEPT OF DEFENSE.DEPT OF THE AIR FORCE.AFMC.AFLCMC", "097.5700.FA8730.FA8732"),
    ("DEPT OF DEFENSE.DEFENSE LOGISTICS AGENCY.DLA LAND AND MARITIME", "097.97AS.DLA.SPE7"),
    ("HOMELAND SECURITY, DEPARTMENT OF.US CUSTOMS AND BORDER PROTECTION", "070.7014.70B0"),
    ("VETERANS AFFAIRS, DEPARTMENT OF.VETERANS AFFAIRS, DEPARTMENT OF.NETWORK CONTRACT OFFICE 7",
     "036.3600.36C247"),
    ("HEALTH AND HUMAN SERVICES, DEPARTMENT OF.NATIONAL INSTITUTES OF HEALTH.NCI", "075.7529.75N910"),
    ("GENERAL SERVICES ADMINISTRATION.FEDERAL ACQUISITION SERVICE.FAS IT CATEGORY", "047.4732.47QTCA"),
    ("ENERGY, DEPARTMENT OF.ENERGY, DEPARTMENT OF.NNSA", "089.8900.89233"),
    ("INTERIOR, DEPARTMENT OF THE.NATIONAL PARK SERVICE.DENVER SERVICE CENTER", "014.1443.140P20"),
    ("TRANSPORTATION, DEPARTMENT OF.FEDERAL AVIATION ADMINISTRATION", "069.6920.697DCK"),
)  # fmt: skip
#: (type, baseType, ptype code) of notices, weighted by how often SAM.gov shows them.
NOTICE_TYPES: tuple[tuple[str, int], ...] = (
    ("Solicitation", 35), ("Combined Synopsis/Solicitation", 25), ("Sources Sought", 15),
    ("Presolicitation", 12), ("Special Notice", 5), ("Award Notice", 8),
)  # fmt: skip
WORK = (
    "Enterprise {k} Support", "{k} Services BPA", "Base Operations and {k}", "{k} Modernization Pilot",
    "IDIQ for {k}", "Regional {k} Contract", "{k} Sustainment", "Recompete: {k} Services",
)  # fmt: skip
STATES = ("VA", "MD", "DC", "TX", "CA", "FL", "CO", "AL", "OH", "WA", "GA", "NC", "AZ", "HI", "PR")
COMPANY_WORDS = (
    "Apex", "Blue Ridge", "Cobalt", "Frontier", "Granite", "Harbor", "Keystone", "Liberty", "Meridian",
    "Northstar", "Patriot", "Sentinel", "Summit", "Tidewater", "Vanguard", "Évora", "Ærø",
)  # fmt: skip
COMPANY_KINDS = ("Solutions LLC", "Technologies Inc.", "Federal Services", "Group LLC", "Systems Corp.")
PROPOSAL_STATUSES: tuple[tuple[str, int], ...] = (
    ("draft", 40), ("in_review", 20), ("submitted", 20), ("won", 10), ("lost", 10),
)  # fmt: skip
#: Characters of UEIs and CAGE codes (SAM.gov leaves out I and O to avoid confusion with 1 and 0).
UEI_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class SeedSummary:
    """What one :func:`seed` call inserted (existing SAM.gov records it met count as skipped)."""

    users: int
    opportunities: int
    saved_opportunities: int
    proposals: int
    proposal_collaborators: int
    entities: int
    skipped_opportunities: int = 0
    skipped_entities: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def __str__(self) -> str:
        """``users=1000 opportunities=500 ...``: one line for the CLI."""
        return " ".join(f"{name}={count}" for name, count in self.as_dict().items())


def canonical_json(payload: Any) -> str:
    """Key-sorted, compact JSON: equal payloads give equal text, whatever order the API sent keys in."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def payload_hash(payload: Any) -> str:
    """sha256 of :func:`canonical_json`: how a sync tells a changed record from a repeated one."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def seed(
    session: Session,
    *,
    users: int,
    seed: int = 0,
    opportunities: int | None = None,
    entities: int | None = None,
    now: dt.datetime | None = None,
) -> SeedSummary:
    """Insert ``users`` users with their saved notices and proposals, plus notices and entities to match.

    Defaults: one notice per two users (at least 20) and one entity per twenty users (at least 5). The caller
    owns the transaction (rows are flushed, not committed).
    """
    if users < 0:
        raise ValueError("users must be >= 0")
    rng = random.Random(seed)
    now = now or utcnow()
    n_opps = opportunities if opportunities is not None else max(20, users // 2)
    n_entities = entities if entities is not None else max(5, users // 20)

    entity_rows = [_entity(rng, now) for _ in range(n_entities)]
    opp_rows = [_opportunity(rng, now, entity_rows) for _ in range(n_opps)]
    user_rows = [_user(rng, now) for _ in range(users)]

    new_entities = _without_existing(session, Entity.uei, entity_rows, "uei")
    new_opps = _without_existing(session, Opportunity.notice_id, opp_rows, "notice_id")
    _make_emails_unique(session, user_rows)
    if new_entities:
        session.execute(insert(Entity), new_entities)
    if new_opps:
        session.execute(insert(Opportunity), new_opps)
    user_ids: list[int] = []
    if user_rows:
        user_ids = list(
            session.scalars(insert(User).returning(User.id, sort_by_parameter_order=True), user_rows)
        )

    notice_ids = [row["notice_id"] for row in opp_rows]
    saved_rows = _saved(rng, now, user_ids, notice_ids)
    if saved_rows:
        session.execute(insert(SavedOpportunity), saved_rows)
    proposal_rows, owners = _proposals(rng, now, user_ids, opp_rows)
    proposal_ids: list[int] = []
    if proposal_rows:
        proposal_ids = list(
            session.scalars(
                insert(Proposal).returning(Proposal.id, sort_by_parameter_order=True), proposal_rows
            )
        )
    collaborator_rows = _collaborators(rng, proposal_ids, owners, user_ids)
    if collaborator_rows:
        session.execute(insert(proposal_collaborators), collaborator_rows)
    session.flush()
    return SeedSummary(
        users=len(user_ids),
        opportunities=len(new_opps),
        saved_opportunities=len(saved_rows),
        proposals=len(proposal_ids),
        proposal_collaborators=len(collaborator_rows),
        entities=len(new_entities),
        skipped_opportunities=len(opp_rows) - len(new_opps),
        skipped_entities=len(entity_rows) - len(new_entities),
    )


# ---------------------------------------------------------------------------------------------- users


def _weighted(rng: random.Random, choices: Sequence[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def ascii_slug(text: str) -> str:
    """``soren.muller`` for ``Søren Müller``: the part of a name an email local part can carry."""
    folded = unicodedata.normalize("NFKD", text.translate(TRANSLITERATE)).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch == ".").strip(".")


def _user(rng: random.Random, now: dt.datetime) -> dict[str, Any]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    local = ascii_slug(f"{first}.{last}") or "user"
    opt_outs = sorted(rng.sample(EMAIL_KINDS, rng.randint(1, 2))) if rng.random() < 0.08 else []
    return {
        "email": f"{local}@{rng.choice(EMAIL_DOMAINS)}",
        "name": f"{first} {last}",
        "timezone": _weighted(rng, TIME_ZONES),
        "naics_codes": rng.sample(sorted(NAICS), rng.randint(1, 3)),
        "keywords": rng.sample(KEYWORDS, rng.randint(1, 4)),
        "set_asides": rng.sample(sorted(SET_ASIDES), rng.choice((0, 0, 1, 1, 2))),
        "email_opt_outs": opt_outs,
        "is_active": rng.random() >= 0.04,
        "last_reminder_at": None,
        "created_at": now - dt.timedelta(days=rng.randint(1, 365), seconds=rng.randint(0, 86_399)),
    }


def _make_emails_unique(session: Session, rows: list[dict[str, Any]]) -> None:
    """Suffix colliding local parts (``jose.pena2@``) against this batch and the demo users already stored.

    Only demo domains can collide, so their stored emails are read once (one query, whatever the batch size).
    """
    domains = [User.email.like(f"%@{domain}") for domain in EMAIL_DOMAINS]
    taken = {e for e in session.scalars(select(User.email).where(or_(*domains))) if e}
    counters: dict[str, int] = {}
    seen: set[str] = set()
    for row in rows:
        email: str = row["email"]
        if email in taken or email in seen:
            local, domain = email.split("@", 1)
            n = counters.get(email, 1)
            while True:
                n += 1
                candidate = f"{local}{n}@{domain}"
                if candidate not in taken and candidate not in seen:
                    break
            counters[email] = n
            email = candidate
        seen.add(email)
        row["email"] = email


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _without_existing(
    session: Session, column: Any, rows: list[dict[str, Any]], key: str
) -> list[dict[str, Any]]:
    """The rows whose external id is neither stored yet nor repeated earlier in ``rows``."""
    ids = [row[key] for row in rows]
    stored: set[str] = set()
    for chunk in _chunks(ids, 1000):
        stored.update(session.scalars(select(column).where(column.in_(chunk))))
    fresh: list[dict[str, Any]] = []
    for row in rows:
        if row[key] not in stored:
            stored.add(row[key])
            fresh.append(row)
    return fresh


# ------------------------------------------------------------------------------------- SAM.gov records


def _code(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(UEI_ALPHABET) for _ in range(length))


def _company(rng: random.Random) -> str:
    return f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}"


def _entity(rng: random.Random, now: dt.datetime) -> dict[str, Any]:
    uei, cage = _code(rng, 12), _code(rng, 5)
    name = _company(rng)
    naics = rng.sample(sorted(NAICS), rng.randint(1, 4))
    registered = now.date() - dt.timedelta(days=rng.randint(30, 3000))
    expires = now.date() + dt.timedelta(days=rng.randint(-60, 365))
    status = "Active" if expires >= now.date() else "Expired"
    state = rng.choice(STATES)
    business_types = rng.sample(sorted(SET_ASIDES), rng.randint(0, 2))
    raw = {
        "entityRegistration": {
            "ueiSAM": uei,
            "cageCode": cage,
            "legalBusinessName": name,
            "registrationStatus": status,
            "registrationDate": registered.isoformat(),
            "registrationExpirationDate": expires.isoformat(),
            "lastUpdateDate": (now.date() - dt.timedelta(days=rng.randint(0, 30))).isoformat(),
        },
        "coreData": {
            "physicalAddress": {
                "city": "Arlington" if state == "VA" else None,
                "stateOrProvinceCode": state,
                "countryCode": "USA",
            },
            "businessTypes": {"sbaBusinessTypeList": [{"sbaBusinessTypeDesc": d} for d in business_types]},
        },
        "assertions": {
            "goodsAndServices": {
                "primaryNaics": naics[0],
                "naicsList": [{"naicsCode": c, "naicsDescription": NAICS[c]} for c in naics],
            }
        },
    }
    return {
        "uei": uei,
        "cage_code": cage,
        "legal_business_name": name,
        "registration_status": status,
        "registration_date": registered,
        "expiration_date": expires,
        "primary_naics": naics[0],
        "naics_list": naics,
        "raw": raw,
        "payload_hash": payload_hash(raw),
        "updated_at": now,
    }


#: Product/service codes by the first digit of the NAICS code, for ``classificationCode``.
PSC_BY_SECTOR = {"5": ("D302", "D307", "R408", "R425", "DA01"), "2": ("Y1JZ", "Z1AA", "Z2AA"),
                 "3": ("1510", "5840", "6605"), "6": ("Q201", "Q999")}  # fmt: skip
#: Where agencies' deadlines are stated (most contracting offices are on the East Coast).
DEADLINE_ZONES = ("America/New_York", "America/New_York", "America/Chicago", "America/Denver",
                  "America/Los_Angeles")  # fmt: skip


def _opportunity(rng: random.Random, now: dt.datetime, entities: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    notice_id = f"{rng.getrandbits(128):032x}"
    kind = _weighted(rng, NOTICE_TYPES)
    naics = rng.choice(sorted(NAICS))
    extra_naics = [naics, *rng.sample(sorted(NAICS), rng.choice((0, 0, 1)))]
    naics_codes = list(dict.fromkeys(extra_naics))
    agency_path, agency_code = rng.choice(AGENCIES)
    topic = rng.choice(KEYWORDS)
    title = rng.choice(WORK).format(k=topic.title() if topic.islower() else topic)
    posted = now.date() - dt.timedelta(days=rng.randint(0, 60))
    set_aside = rng.choice((None, None, *sorted(SET_ASIDES)))
    deadline: dt.datetime | None = None
    if kind not in ("Award Notice", "Special Notice") and rng.random() >= 0.1:
        zone = ZoneInfo(rng.choice(DEADLINE_ZONES))
        day = now.date() + dt.timedelta(days=rng.randint(2, 45))
        deadline = dt.datetime.combine(day, dt.time(rng.choice((12, 14, 16, 17)), 0), tzinfo=zone)
    office = agency_code.rsplit(".", 1)[-1]
    solicitation = f"{office}-{posted:%y}-{rng.choice('RQB')}-{rng.randint(1, 9999):04d}"
    state = rng.choice(STATES)
    country = {"code": "USA", "name": "UNITED STATES"}
    award: dict[str, Any] | None = None
    if kind == "Award Notice" and entities:
        winner = rng.choice(entities)
        award = {
            "amount": f"{rng.randint(50_000, 25_000_000)}.00",
            "date": (posted - dt.timedelta(days=rng.randint(1, 20))).isoformat(),
            "number": f"{office}{posted:%y}C{rng.randint(1, 9999):04d}",
            "awardee": {
                "name": winner["legal_business_name"],
                "ueiSAM": winner["uei"],
                "location": {"state": {"code": state}, "country": country},
            },
        }
    contact = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    contacts = (
        [
            {
                "type": "primary",
                "fullName": contact,
                "email": None,
                "phone": None,
                "title": "Contracting Officer",
            }
        ]
        if rng.random() < 0.8
        else None
    )
    office_address = {"zipcode": f"{rng.randint(10000, 99999)}", "city": None, "countryCode": "USA",
                      "state": rng.choice(STATES)}  # fmt: skip
    place = {"state": {"code": state, "name": None}, "country": country} if rng.random() < 0.7 else None
    files = (
        f"https://sam.gov/api/prod/opps/v3/opportunities/resources/files/{rng.getrandbits(64):016x}/download"
    )
    resources = [files] if rng.random() < 0.5 else None
    archive = (deadline.date() if deadline else posted) + dt.timedelta(days=15)
    ui_link = f"https://sam.gov/opp/{notice_id}/view"
    raw: dict[str, Any] = {
        "noticeId": notice_id,
        "title": title,
        "solicitationNumber": solicitation,
        "fullParentPathName": agency_path,
        "fullParentPathCode": agency_code,
        "postedDate": posted.isoformat(),
        "type": kind,
        "baseType": kind,
        "archiveType": "autocustom",
        "archiveDate": archive.isoformat(),
        "typeOfSetAsideDescription": SET_ASIDES[set_aside] if set_aside else None,
        "typeOfSetAside": set_aside,
        "responseDeadLine": deadline.isoformat() if deadline else None,
        "naicsCode": naics,
        "naicsCodes": naics_codes,
        "classificationCode": rng.choice(PSC_BY_SECTOR.get(naics[0], ("R499",))),
        "active": "Yes",
        "award": award,
        "pointOfContact": contacts,
        "description": f"https://api.sam.gov/prod/opportunities/v1/noticedesc?noticeid={notice_id}",
        "organizationType": "OFFICE",
        "officeAddress": office_address,
        "placeOfPerformance": place,
        "additionalInfoLink": None,
        "uiLink": ui_link,
        "resourceLinks": resources,
    }
    return {
        "notice_id": notice_id,
        "title": title,
        "solicitation_number": solicitation,
        "agency_path": agency_path,
        "agency_code": agency_code,
        "posted_date": posted,
        "notice_type": kind,
        "base_type": kind,
        "archive_type": "autocustom",
        "archive_date": archive,
        "set_aside_code": set_aside,
        "set_aside_description": raw["typeOfSetAsideDescription"],
        "response_deadline": deadline.astimezone(dt.UTC) if deadline else None,
        "naics_code": naics,
        "naics_codes": naics_codes,
        "classification_code": raw["classificationCode"],
        "active": True,
        "award_amount": Decimal(award["amount"]) if award else None,
        "awardee_name": award["awardee"]["name"] if award else None,
        "awardee_uei": award["awardee"]["ueiSAM"] if award else None,
        "place_state": state,
        "ui_link": ui_link,
        "raw": raw,
        "payload_hash": payload_hash(raw),
        "first_seen_at": now,
        "updated_at": now,
    }


# --------------------------------------------------------------------------------- per-user activity


def _saved(
    rng: random.Random, now: dt.datetime, user_ids: Sequence[int], notice_ids: Sequence[str]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for user_id in user_ids:
        k = min(len(notice_ids), rng.choice((0, 1, 2, 3, 3, 4, 5, 8)))
        for notice_id in rng.sample(notice_ids, k):
            saved_at = now - dt.timedelta(minutes=rng.randint(5, 60 * 24 * 30))
            rows.append({"user_id": user_id, "notice_id": notice_id, "saved_at": saved_at})
    return rows


def _proposals(
    rng: random.Random, now: dt.datetime, user_ids: Sequence[int], opps: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[int]]:
    """Proposal rows and, in the same order, their owners (collaborators must differ from the owner)."""
    biddable = [o for o in opps if o["notice_type"] != "Award Notice"] or list(opps)
    rows: list[dict[str, Any]] = []
    owners: list[int] = []
    for user_id in user_ids:
        if not biddable or rng.random() >= 0.35:
            continue
        for _ in range(rng.randint(1, 2)):
            opp = rng.choice(biddable)
            deadline: dt.datetime | None = opp["response_deadline"]
            due = deadline.date() if deadline else now.date() + dt.timedelta(days=rng.randint(3, 60))
            created = now - dt.timedelta(days=rng.randint(1, 40))
            rows.append({
                "owner_id": user_id,
                "notice_id": opp["notice_id"],
                "title": f"Proposal: {opp['title']}"[:300],
                "status": _weighted(rng, PROPOSAL_STATUSES),
                "due_date": due,
                "created_at": created,
                "updated_at": created + dt.timedelta(hours=rng.randint(0, 240)),
            })  # fmt: skip
            owners.append(user_id)
    return rows, owners


def _collaborators(
    rng: random.Random, proposal_ids: Sequence[int], owners: Sequence[int], user_ids: Sequence[int]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for proposal_id, owner in zip(proposal_ids, owners, strict=True):
        k = rng.choice((0, 1, 1, 2, 3))
        chosen = {u for u in rng.sample(user_ids, min(k + 1, len(user_ids))) if u != owner}
        rows.extend({"proposal_id": proposal_id, "user_id": u} for u in sorted(chosen)[:k])
    return rows
