"""The documents queue against bare libraries doing the same work, measured in the same run.

Parts, each side in a fresh process of its own (peak RSS is the process's, imports included):

``xlsx``
    ``export_data`` of 100,000 opportunities to XLSX (typed cells, bold frozen header, autofilter, widths,
    the ``documents`` row, progress, sha256, rename) against a bare openpyxl write-only loop appending the same
    rows from the same streamed query. Goals: peak RSS < 150 MB; time <= 1.25x the bare loop.
``csv``
    ``export_data`` of the same rows to CSV (formula neutralising, row, progress, sha256, rename) against a bare
    ``csv.writer`` over the same streamed query. Goal: throughput >= 0.5x the bare writer's.
``pdf``
    ``generate_report`` of a one-page report and of a 14-page pipeline report (query, template, WeasyPrint,
    row, sha256, rename) against bare WeasyPrint rendering the same HTML to a file. Goal: <= 1.1x.

Export sides alternate over ``--rounds`` rounds of fresh processes; PDF sides alternate render by render inside
one process per round (same load, same warm caches); medians are reported. The export's process imports what a
documents worker imports (``actors.documents``, WeasyPrint included), so its RSS is a worker's. A PostgreSQL schema of
its own (dropped at the end) keeps the bench apart from everything else.

    .venv/bin/python bench/documents.py [--rows 100000] [--rounds 3] [--part all]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Proposals that make the pipeline report 14 pages long (cover, status chart, table).
PAGES_14_PROPOSALS = 520

# ------------------------------------------------------------------------------------------ child sides


def _scratch() -> Path:
    """Where the bare sides write: inside the run's STORAGE_DIR, removed with it at the end."""
    directory = Path(os.environ["STORAGE_DIR"]) / "bare"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_export(fmt: str, bare: bool) -> dict[str, Any]:
    """One export, ours or the bare library's, timed inside this fresh process."""
    import actors.documents  # noqa: F401  (what a documents worker imports)
    from app.documents import exports
    from app.documents.datasets import dataset
    from app.jobs.documents import ExportFilters

    user_id = int(os.environ["BENCH_USER_ID"])
    target = _scratch() / f"bare.{fmt}"
    started = time.perf_counter()
    if not bare:
        request_id = f"bench-{fmt}-{time.time_ns()}"
        exports.export_data(request_id=request_id, user_id=user_id, dataset_name="opportunities", fmt=fmt)
    else:
        data = dataset("opportunities", user_id=user_id, filters=ExportFilters())
        if fmt == "csv":
            _bare_csv(data, target)
        else:
            _bare_xlsx(data, target)
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": _peak_rss_mb()}


def _bare_csv(data: Any, target: Path) -> None:
    import csv

    from app.documents.exports import stream_rows

    with target.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(data.keys)
        for row in stream_rows(data):
            writer.writerow(row)


def _bare_xlsx(data: Any, target: Path) -> None:
    import datetime as dt

    from openpyxl import Workbook

    from app.documents.exports import stream_rows

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Opportunities")
    sheet.append(data.keys)
    for row in stream_rows(data):
        # openpyxl refuses aware datetimes: the least a bare loop must do with these rows.
        sheet.append([v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v for v in row])
    book.save(target)


def child_pdf(pages: str, rounds: int) -> dict[str, Any]:
    """``rounds`` renders of one report by each side, alternating in this one process (same load, same warm
    caches): ours end to end, and bare WeasyPrint on the same HTML. Median seconds of each."""
    import weasyprint

    import actors.documents  # noqa: F401
    from app.documents import pdf, report_data, reports
    from app.documents.report_model import Report

    user_id = int(os.environ["BENCH_USER_ID"])
    report = report_data.build("pipeline", user_id=user_id)
    if pages == "1":
        report = Report(report.name, report.title, report.subtitle, report.owner, report.generated_at)
    html = pdf.render_html(reports.REPORT_TEMPLATE, {"report": report})
    target = _scratch() / "bare.pdf"
    # Warm up: the worker has rendered before (fonts found, templates compiled); so has the bare side.
    weasyprint.HTML(string=html, base_url=str(pdf.TEMPLATES_DIR)).write_pdf(target)
    pdf.html_to_pdf(html, target)
    ours, bare = [], []
    for index in range(rounds):
        started = time.perf_counter()
        weasyprint.HTML(string=html, base_url=str(pdf.TEMPLATES_DIR)).write_pdf(target)
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        if pages == "1":
            _one_page(report, f"bench-pdf1-{time.time_ns()}-{index}")
        else:
            reports.generate_report(
                request_id=f"bench-pdf14-{time.time_ns()}-{index}",
                user_id=user_id,
                report="pipeline",
                fmt="pdf",
            )
        ours.append(time.perf_counter() - started)
    page_count = pdf.html_to_pdf(html, target)
    return {"ours": statistics.median(ours), "bare": statistics.median(bare), "pages": page_count}


def _one_page(report: Any, request_id: str) -> None:
    """The one-page report through the same storage path as generate_report (row, temp file, rename)."""
    from app.documents import reports, storage

    with storage.produce(request_id, kind="report", fmt="pdf", user_id=None) as out:
        reports.write(report, "pdf", out)


# ----------------------------------------------------------------------------------------------- parent


def run_child(env: dict[str, str], *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def seed(rows: int) -> int:
    from tests.integration.documents.reports_data import seed_opportunities, seed_reports

    seeded = seed_reports(proposals=PAGES_14_PROPOSALS, opportunities=0)
    seed_opportunities(rows)
    return seeded.user_id


def main() -> None:
    from bench.scratch import argument_parser

    parser = argument_parser(__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part", choices=("all", "xlsx", "csv", "pdf"), default="all")
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "export":
            result = child_export(rest[0], rest[1] == "bare")
        else:
            result = child_pdf(rest[0], int(rest[1]))
        print(json.dumps(result))
        return

    from bench.scratch import drop_schema, migrated_database

    url, schema = migrated_database()
    storage_dir = tempfile.mkdtemp(prefix="bench-storage-")
    env = {"DATABASE_URL": url, "STORAGE_DIR": storage_dir, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}
    os.environ.update(env)
    from app.db.session import dispose_engines
    from app.settings import get_settings, reset_settings

    reset_settings()  # the scratch database, not the default one the settings may have been read with
    dispose_engines()
    assert get_settings().database_url == url
    try:
        started = time.perf_counter()
        env["BENCH_USER_ID"] = str(seed(args.rows))
        print(
            f"seeded {args.rows:,} opportunities and {PAGES_14_PROPOSALS} proposals in {time.perf_counter() - started:.1f} s"
        )
        for fmt in ("xlsx", "csv"):
            if args.part not in ("all", fmt):
                continue
            ours, bare = [], []
            for _ in range(args.rounds):
                bare.append(run_child(env, "export", fmt, "bare"))
                ours.append(run_child(env, "export", fmt, "ours"))
            t_ours = statistics.median(r["seconds"] for r in ours)
            t_bare = statistics.median(r["seconds"] for r in bare)
            rss = max(r["peak_rss_mb"] for r in ours)
            rss_bare = max(r["peak_rss_mb"] for r in bare)
            print(
                f"{fmt}: {args.rows:,} rows export_data {t_ours:.2f} s, bare {t_bare:.2f} s -> "
                f"time ratio {t_ours / t_bare:.2f}x, throughput ratio {t_bare / t_ours:.2f}x; "
                f"peak RSS {rss:.0f} MB (bare {rss_bare:.0f} MB)"
            )
        if args.part in ("all", "pdf"):
            for pages in ("1", "14"):
                repeat = 10 if pages == "1" else 5
                ours_t, bare_t, counts = [], [], set()
                for _ in range(args.rounds):
                    result = run_child(env, "pdf", pages, str(repeat))
                    bare_t.append(result["bare"])
                    ours_t.append(result["ours"])
                    counts.add(result["pages"])
                t_ours, t_bare = statistics.median(ours_t), statistics.median(bare_t)
                print(
                    f"pdf: {sorted(counts)} page(s) generate_report {t_ours * 1000:.0f} ms, bare WeasyPrint "
                    f"{t_bare * 1000:.0f} ms -> {t_ours / t_bare:.2f}x"
                )
    finally:
        dispose_engines()
        drop_schema(schema)
        shutil.rmtree(storage_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
