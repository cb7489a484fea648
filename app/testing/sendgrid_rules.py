"""The request rules of SendGrid's v3 Mail Send (docs/sendgrid.md), as a pure function.

Each breach is reported the way SendGrid does: a message, the field it concerns and a help link. The simulator
answers 400 with all of them; keeping the rules apart from the server lets them be tested without sockets.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CATEGORIES = 10
MAX_CUSTOM_ARGS_BYTES = 10_000
#: Whole request, in bytes; larger is a 413.
MAX_REQUEST_BYTES = 30 * 1024 * 1024

_EMAIL = re.compile(r"^[^@\s\"<>()\[\],;:]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message."


@dataclass(frozen=True)
class Breach:
    message: str
    field: str | None

    def as_json(self) -> dict[str, Any]:
        return {"message": self.message, "field": self.field, "help": _HELP + (self.field or "body")}


def valid_email(value: object) -> bool:
    return isinstance(value, str) and bool(_EMAIL.match(value))


def check(body: dict[str, Any]) -> list[Breach]:
    """Every rule ``body`` breaks (empty when SendGrid would accept it)."""
    breaches: list[Breach] = []
    breaches += _personalizations(body)
    breaches += _sender(body)
    breaches += _content(body)
    breaches += _custom_args(body)
    breaches += _categories(body)
    breaches += _attachments(body)
    return breaches


def _personalizations(body: dict[str, Any]) -> list[Breach]:
    items = body.get("personalizations")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_PERSONALIZATIONS:
        return [
            Breach(
                f"The personalizations field is required and must have 1..{MAX_PERSONALIZATIONS} items.",
                "personalizations",
            )
        ]
    breaches: list[Breach] = []
    recipients = 0
    global_subject = _non_empty(body.get("subject"))
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            breaches.append(Breach("Each personalization must be an object.", f"personalizations.{i}"))
            continue
        to = item.get("to")
        if not isinstance(to, list) or not to:
            breaches.append(
                Breach(
                    "The to array is required for all personalization objects, and must have at "
                    "least one email object with a valid email address.",
                    f"personalizations.{i}.to",
                )
            )
        for kind in ("to", "cc", "bcc"):
            addresses = item.get(kind) or []
            if not isinstance(addresses, list):
                breaches.append(Breach(f"The {kind} field must be an array.", f"personalizations.{i}.{kind}"))
                continue
            recipients += len(addresses)
            for j, address in enumerate(addresses):
                if not isinstance(address, dict) or not valid_email(address.get("email")):
                    breaches.append(
                        Breach("Does not contain a valid address.", f"personalizations.{i}.{kind}.{j}.email")
                    )
        if not global_subject and not _non_empty(item.get("subject")):
            breaches.append(
                Breach(
                    "The subject is required. You can get around this requirement if you use a "
                    "template with a subject defined or if every personalization has a subject "
                    "defined.",
                    "subject",
                )
            )
    if recipients > MAX_RECIPIENTS:
        breaches.append(
            Breach(
                f"The total number of recipients must be no more than {MAX_RECIPIENTS}.", "personalizations"
            )
        )
    return breaches


def _sender(body: dict[str, Any]) -> list[Breach]:
    sender = body.get("from")
    breaches = []
    if not isinstance(sender, dict) or not sender.get("email"):
        breaches.append(
            Breach(
                "The from object must be provided for every email send. It is an object that "
                "requires an email parameter, but may also contain a name parameter.",
                "from.email",
            )
        )
    elif not valid_email(sender["email"]):
        breaches.append(Breach("The from email does not contain a valid address.", "from.email"))
    reply_to = body.get("reply_to")
    if reply_to is not None and (not isinstance(reply_to, dict) or not valid_email(reply_to.get("email"))):
        breaches.append(Breach("The reply_to email does not contain a valid address.", "reply_to.email"))
    return breaches


def _content(body: dict[str, Any]) -> list[Breach]:
    content = body.get("content")
    if content is None and body.get("template_id"):
        return []
    if not isinstance(content, list) or not content:
        return [
            Breach(
                "Unless a valid template_id is provided, the content parameter is required. There must be "
                "at least one defined content block.",
                "content",
            )
        ]
    breaches = []
    types = []
    for i, block in enumerate(content):
        if (
            not isinstance(block, dict)
            or not _non_empty(block.get("type"))
            or not isinstance(block.get("value"), str)
        ):
            breaches.append(Breach("Each content block needs a type and a string value.", f"content.{i}"))
            continue
        types.append(block["type"])
    if (
        "text/plain" in types
        and "text/html" in types
        and types.index("text/plain") > types.index("text/html")
    ):
        breaches.append(
            Breach("If present, text/plain content must be first, followed by text/html.", "content")
        )
    return breaches


def _custom_args(body: dict[str, Any]) -> list[Breach]:
    breaches = []
    total = 0
    sources = [("custom_args", body.get("custom_args"))]
    sources += [
        (f"personalizations.{i}.custom_args", p.get("custom_args"))
        for i, p in enumerate(body.get("personalizations") or [])
        if isinstance(p, dict)
    ]
    for field, args in sources:
        if args is None:
            continue
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            breaches.append(Breach("Custom args must be an object of string values.", field))
            continue
        total += len(json.dumps(args).encode())
    if total > MAX_CUSTOM_ARGS_BYTES:
        breaches.append(
            Breach(
                f"The custom_args together must be no more than {MAX_CUSTOM_ARGS_BYTES} bytes.", "custom_args"
            )
        )
    return breaches


def _categories(body: dict[str, Any]) -> list[Breach]:
    categories = body.get("categories")
    if categories is None:
        return []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        return [Breach("Categories must be an array of strings.", "categories")]
    if len(categories) > MAX_CATEGORIES:
        return [Breach(f"Too many categories: at most {MAX_CATEGORIES}.", "categories")]
    return []


def _attachments(body: dict[str, Any]) -> list[Breach]:
    breaches = []
    for i, item in enumerate(body.get("attachments") or []):
        if not isinstance(item, dict) or not _non_empty(item.get("filename")):
            breaches.append(
                Breach("The attachment filename parameter is required.", f"attachments.{i}.filename")
            )
            continue
        try:
            base64.b64decode(item.get("content") or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            breaches.append(
                Breach("The attachment content must be base64 encoded.", f"attachments.{i}.content")
            )
        if not item.get("content"):
            breaches.append(Breach("The attachment content is required.", f"attachments.{i}.content"))
    return breaches


def _non_empty(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
