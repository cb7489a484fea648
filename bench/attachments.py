"""process_attachment against the bare work it wraps, measured in the same run.

Baseline: ``httpx`` streams the PDF from the local attachment server into a file and pypdf reads the text of
every page, nothing else. Ours: ``process_attachment`` (the ``documents`` row, the temporary file renamed into
place, sha256, type sniffing, the text stored as JSON, the ``attachments`` rows, the blob hard link).

- **first time**: every download has different bytes (a unique comment after ``%%EOF``), so each is read;
- **dedupe**: the same bytes for every notice, so only the first is read and the others are linked.

The PDF is the sample solicitation repeated to ``--pages`` pages. The server answers at once: the figures are
the platform's cost over the bare work, not a network's. Sides alternate over ``--rounds``; medians are reported.

    .venv/bin/python bench/attachments.py [--pages 30] [--files 10] [--rounds 3]
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXTURE = ROOT / "tests" / "fixtures" / "solicitation" / "solicitation.pdf"


def make_pdf(pages: int) -> bytes:
    """The sample solicitation's pages repeated to ``pages`` pages."""
    from pypdf import PdfReader, PdfWriter

    source = PdfReader(FIXTURE)
    writer = PdfWriter()
    while len(writer.pages) < pages:
        for page in source.pages[: pages - len(writer.pages)]:
            writer.add_page(page)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def bare(urls: list[str], directory: Path) -> float:
    import httpx
    from pypdf import PdfReader

    started = time.perf_counter()
    with httpx.Client() as client:
        for index, url in enumerate(urls):
            target = directory / f"bare-{index}.pdf"
            with client.stream("GET", url) as response, target.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
            texts = [page.extract_text() for page in PdfReader(target).pages]
            assert texts
    return time.perf_counter() - started


def ours(urls: list[str], tag: str) -> float:
    from app.documents.attachments import process_attachment

    started = time.perf_counter()
    for index, url in enumerate(urls):
        notice = f"{index:08x}{tag:0>24}"[:32]
        process_attachment(request_id=f"bench-{tag}-{index:04d}", notice_id=notice, url=url)
    return time.perf_counter() - started


def main() -> None:
    from bench.scratch import argument_parser

    parser = argument_parser(__doc__)
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    from bench.scratch import drop_schema, migrated_database

    url, schema = migrated_database()
    storage = Path(tempfile.mkdtemp(prefix="bench-attachments-"))
    os.environ.update(
        {"DATABASE_URL": url, "STORAGE_DIR": str(storage), "ATTACHMENT_ALLOW_PRIVATE_HOSTS": "true"}
    )
    os.environ.pop("SENTRY_DSN", None)
    from app.settings import reset_settings
    from app.testing.attachment_server import AttachmentServer, Route

    reset_settings()
    pdf = make_pdf(options.pages)
    results: dict[str, list[tuple[float, float]]] = {"first time": [], "dedupe": []}
    try:
        with AttachmentServer() as server:
            for round_number in range(options.rounds):
                for kind in results:
                    urls = []
                    for index in range(options.files):
                        # dedupe: bytes new to this round, the same for every notice (the first one reads them)
                        tail = f"\n%{round_number}\n" if kind == "dedupe" else f"\n%{round_number}-{index}\n"
                        body = pdf + tail.encode()
                        urls.append(server.add(f"/{kind[0]}/{round_number}/{index}.pdf", Route.file(body)))
                    tag = f"{kind[0]}{round_number}"
                    if round_number % 2:  # alternate which side runs first
                        measured, baseline = ours(urls, tag), bare(urls, storage)
                    else:
                        baseline, measured = bare(urls, storage), ours(urls, tag)
                    results[kind].append((baseline, measured))
    finally:
        drop_schema(schema)
    print(
        f"{options.files} PDFs of {len(pdf) // 1024} KB, {options.pages} pages each; {options.rounds} rounds"
    )
    for kind, pairs in results.items():
        base = statistics.median(b for b, _ in pairs)
        mine = statistics.median(m for _, m in pairs)
        print(
            f"{kind:>10}: bare {base / options.files * 1000:7.1f} ms/file, "
            f"process_attachment {mine / options.files * 1000:7.1f} ms/file, ratio {mine / base:.2f}x"
        )


if __name__ == "__main__":
    main()
