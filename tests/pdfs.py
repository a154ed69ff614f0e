"""A tiny PDF writer for tests: real, valid text PDFs without a PDF library.

The ingester's PDF path needs fixture files, and checking binary PDFs into the repo hides
what they contain; building them from strings keeps every test's input readable. Only the
standard Helvetica font is used (every reader has it, no embedding), so text is limited to
what WinAnsi (cp1252) can encode, which is enough for English test documents.
"""

from __future__ import annotations

from collections.abc import Sequence

_PAGE_WIDTH, _PAGE_HEIGHT = 612, 792  # US Letter, in points
_LEFT, _TOP, _FONT_SIZE, _LEADING = 72, 720, 11, 14


def build_pdf(pages: Sequence[Sequence[str]], title: str | None = None) -> bytes:
    """A PDF with one page per entry of `pages`, each line of text drawn on its own line.

    A page with no lines has an empty content stream, like a scanned page without OCR.
    `title` goes into the document information dictionary (/Title).
    """
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    page_ids: list[int] = []
    for lines in pages:
        page_id, content_id = len(objects) + 2, len(objects) + 3
        objects[page_id] = _page(content_id)
        objects[content_id] = _stream(_content(lines))
        page_ids.append(page_id)
    kids = " ".join(f"{page_id} 0 R" for page_id in page_ids)
    objects[2] = f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode()
    info = b""
    if title is not None:
        info_id = len(objects) + 1
        objects[info_id] = b"<< /Title " + _string(title) + b" >>"
        info = b" /Info %d 0 R" % info_id
    return _serialise(objects, trailer_extra=info)


def _page(content_id: int) -> bytes:
    return (
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_PAGE_WIDTH} {_PAGE_HEIGHT}] "
        f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>"
    ).encode()


def _content(lines: Sequence[str]) -> bytes:
    if not lines:
        return b""
    operations = [b"BT", b"/F1 %d Tf" % _FONT_SIZE, b"%d TL" % _LEADING]
    operations.append(b"%d %d Td" % (_LEFT, _TOP))
    for index, line in enumerate(lines):
        if index:
            operations.append(b"T*")  # next line
        operations.append(_string(line) + b" Tj")
    operations.append(b"ET")
    return b"\n".join(operations)


def _string(text: str) -> bytes:
    """A PDF literal string: backslash and parentheses escaped, cp1252-encoded."""
    raw = text.encode("cp1252")  # raises for text Helvetica's WinAnsi encoding cannot show
    escaped = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"(" + escaped + b")"


def _stream(data: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def _serialise(objects: dict[int, bytes], trailer_extra: bytes) -> bytes:
    """Header, numbered objects, a cross-reference table with exact byte offsets, trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")  # the binary comment marks a binary file
    offsets: list[int] = []
    for number in range(1, len(objects) + 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref_offset = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R" % (len(objects) + 1) + trailer_extra + b" >>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref_offset
    return bytes(out)
