"""The repository stands on its own: no file points outside it, and the documents' links lead somewhere.

A clone holds only what git tracks. A reference to a design note kept beside the repository, or a Markdown link
to a file that was renamed, is a dead end for the next maintainer.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.helpers import ROOT

#: Names of the notes the project was first briefed from, which live outside the repository.
OUTSIDE_REFERENCE = re.compile(
    r"\.\./shared|ARCHITECTURE\.md|DRAMATIQ-NOTES\.md|STYLE\.md|contracts/(?:samgov|sendgrid|sentry)"
)
#: Markdown links to a relative target: ``[text](docs/email.md)`` or ``[text](img/x.png#frag)``.
RELATIVE_LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)\s#]+)(?:#[^)]*)?\)")
#: This file names the patterns it forbids.
SELF = Path(__file__).relative_to(ROOT).as_posix()


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    if not listed:
        pytest.fail("git ls-files listed nothing: run the tests from a git checkout")
    files = []
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if name == SELF or not path.is_file():
            continue
        if path.suffix in {".png", ".jpg", ".ico", ".pdf", ".xlsx", ".woff", ".woff2"}:
            continue
        files.append(path)
    return files


def test_no_tracked_file_points_outside_the_repository() -> None:
    offenders = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE_REFERENCE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert offenders == [], "point into docs/ instead:\n" + "\n".join(offenders)


def test_markdown_links_lead_to_files_of_the_repository() -> None:
    broken = []
    for path in tracked_text_files():
        if path.suffix != ".md":
            continue
        for target in RELATIVE_LINK.findall(path.read_text(encoding="utf-8")):
            resolved = (path.parent / target).resolve()
            if not resolved.exists() or not resolved.is_relative_to(ROOT):
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert broken == [], "broken relative links:\n" + "\n".join(broken)


def test_the_link_check_sees_a_broken_link() -> None:
    # Given a document linking to a file that does not exist, the pattern finds the link it must resolve.
    assert RELATIVE_LINK.findall("see [the design](docs/missing.md#top) and [web](https://x.org)") == [
        "docs/missing.md"
    ]
    # (the sample is assembled so that this file does not itself carry the reference it forbids)
    assert OUTSIDE_REFERENCE.search("as " + "../" + "shared/" + "ARCHITECTURE" + ".md says")
