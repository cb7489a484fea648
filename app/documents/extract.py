"""What a downloaded file is (from its bytes, never from the server's Content-Type) and the text in it.

Servers label attachments badly: SAM.gov mirrors answer ``application/octet-stream`` for PDFs, some proxies
``text/html`` for everything, and a login page comes back with ``200`` where a document was expected. So the
type is read from the magic numbers and, for the Office formats (ZIP containers), from the parts inside.

Supported: PDF (text per page with pypdf, page count), DOCX (paragraph text read from ``word/document.xml``
with lxml; an explicit page break starts a new "page"), XLSX (cell text, one "page" per sheet) and plain
text. Anything else, and any file that cannot be parsed, raises :class:`~app.errors.PermanentError` naming
the reason: downloading it again would give the same bytes.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from app.errors import PermanentError

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEXT = "text/plain"

#: The file extension each supported type is stored under (whatever the server called the file).
EXTENSIONS = {PDF: ".pdf", DOCX: ".docx", XLSX: ".xlsx", TEXT: ".txt"}

#: Bytes read to sniff the type. PDF readers accept the header anywhere in the first 1024 bytes.
SNIFF_BYTES = 8192
#: Largest uncompressed XML part read from a DOCX/XLSX: far above a real document, far below a zip bomb.
MAX_XML_PART_BYTES = 100 * 1024 * 1024

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"

#: Recognised but unsupported leading bytes, with the reason given to the operator.
_UNSUPPORTED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office (OLE2 .doc/.xls) file"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image (no OCR)"),
    (b"\xff\xd8\xff", "a JPEG image (no OCR)"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image (no OCR)"),
    (b"MM\x00*", "a TIFF image (no OCR)"),
    (b"{\\rtf", "an RTF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
)


@dataclass(frozen=True)
class Extracted:
    """The text of one file. ``pages[i]`` is page ``i + 1``; ``page_count`` is set for PDFs only."""

    content_type: str
    pages: tuple[str, ...]
    page_count: int | None

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.content_type]


def sniff(path: Path) -> str:
    """The content type of the file at ``path`` from its bytes; :class:`PermanentError` if unsupported."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        raise PermanentError("unsupported attachment: the file is empty")
    if b"%PDF-" in head[:1024]:
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(path)
    for magic, what in _UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            raise PermanentError(f"unsupported attachment: {what}")
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        raise PermanentError("unsupported attachment: an HTML page (an error or login page?), not a document")
    if _looks_like_text(head):
        return TEXT
    raise PermanentError("unsupported attachment: binary data of an unknown type")


def extract(path: Path, content_type: str) -> Extracted:
    """The text of a file already sniffed as ``content_type``; :class:`PermanentError` if it is corrupt."""
    if content_type == PDF:
        return _extract_pdf(path)
    if content_type == DOCX:
        return Extracted(DOCX, _docx_pages(path), None)
    if content_type == XLSX:
        return Extracted(XLSX, _xlsx_sheets(path), None)
    if content_type == TEXT:
        return Extracted(TEXT, (_decode_text(path.read_bytes()),), None)
    raise PermanentError(f"unsupported attachment type {content_type}")


def _sniff_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise PermanentError(f"corrupt attachment: a damaged ZIP/Office file ({err})") from err
    if "word/document.xml" in names:
        return DOCX
    if "xl/workbook.xml" in names:
        return XLSX
    if any(name.startswith("ppt/") for name in names):
        raise PermanentError("unsupported attachment: a PowerPoint (.pptx) file")
    raise PermanentError("unsupported attachment: a ZIP archive (attachments inside archives are not opened)")


def _looks_like_text(head: bytes) -> bool:
    """UTF-8 (or Latin-1 without control bytes) with no NULs: what a ``.txt`` statement of work looks like."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as err:
        if err.start >= len(head) - 3:  # a multi-byte character cut at the end of the sniffed block
            return True
    controls = sum(1 for byte in head if byte < 32 and byte not in b"\t\r\n\f")
    return controls == 0


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _extract_pdf(path: Path) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise PermanentError("unsupported attachment: the PDF is password-protected")
        pages = tuple(page.extract_text() or "" for page in reader.pages)
    except PermanentError:
        raise
    # pypdf reports damaged structure with its own errors and, deeper in the object parser, with the builtin
    # ones below; none of them goes away by downloading the same bytes again.
    except (PyPdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, zlib.error) as err:
        raise PermanentError(
            f"corrupt attachment: the PDF cannot be read ({type(err).__name__}: {err})"
        ) from err
    if not pages:
        raise PermanentError("corrupt attachment: the PDF has no pages")
    return Extracted(PDF, pages, len(pages))


def _read_part(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_XML_PART_BYTES:
        raise PermanentError(f"unsupported attachment: {name} unpacks to {info.file_size} bytes")
    return archive.read(name)


def _parse_xml(data: bytes, what: str) -> object:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as err:
        raise PermanentError(f"corrupt attachment: {what} is not well-formed XML ({err})") from err


def _docx_pages(path: Path) -> tuple[str, ...]:
    try:
        with zipfile.ZipFile(path) as archive:
            data = _read_part(archive, "word/document.xml")
    except (zipfile.BadZipFile, KeyError, OSError, zlib.error) as err:
        raise PermanentError(f"corrupt attachment: the DOCX cannot be read ({err})") from err
    root = _parse_xml(data, "the DOCX body")
    pages: list[list[str]] = [[]]
    for paragraph in root.iter(f"{_W}p"):  # type: ignore[attr-defined]
        parts: list[str] = []
        for node in paragraph.iter(f"{_W}t", f"{_W}tab", f"{_W}br"):
            if node.tag == f"{_W}t":
                parts.append(node.text or "")
            elif node.tag == f"{_W}tab":
                parts.append("\t")
            elif node.get(f"{_W}type") == "page":
                pages[-1].append("".join(parts))
                parts = []
                pages.append([])
            else:
                parts.append("\n")
        pages[-1].append("".join(parts))
    return tuple("\n".join(lines).strip() for lines in pages)


def _xlsx_sheets(path: Path) -> tuple[str, ...]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise PermanentError(f"corrupt attachment: the XLSX cannot be read ({err})") from err
    try:
        sheets = []
        for sheet in workbook.worksheets:
            rows = (
                "\t".join("" if value is None else str(value) for value in row)
                for row in sheet.iter_rows(values_only=True)
            )
            sheets.append("\n".join(row for row in rows if row.strip()))
        return tuple(sheets)
    finally:
        workbook.close()
