"""Fixtures of the documents tests: the platform environment with a storage directory, and readers' helpers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

POPPLER = ("pdftotext", "pdfinfo", "pdffonts")


@pytest.fixture
def docs_env(platform_env: dict[str, str]) -> dict[str, str]:
    missing = [tool for tool in POPPLER if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"poppler-utils missing ({', '.join(missing)}): run `make test-deps`", pytrace=False)
    Path(platform_env["STORAGE_DIR"]).mkdir(parents=True, exist_ok=True)
    return platform_env


def pdftotext(path: Path, *, raw: bool = False) -> str:
    """The PDF's text: laid out as on the page, or (``raw``) in content order, where a table cell's wrapped
    lines follow each other."""
    mode = "-raw" if raw else "-layout"
    return subprocess.run(
        ["pdftotext", mode, "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout


def pdfinfo_pages(path: Path) -> int:
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, check=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("Pages:"):
            return int(line.split()[1])
    raise AssertionError(f"pdfinfo printed no page count:\n{out}")


def pdffonts(path: Path) -> list[dict[str, str]]:
    """One dict per font: name, type, emb (yes/no), sub (yes/no)."""
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, check=True, text=True).stdout
    fonts = []
    for line in out.splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 7:
            # name type [type2] encoding emb sub uni object ID
            fonts.append({"name": parts[0], "emb": parts[-5], "sub": parts[-4]})
    return fonts
