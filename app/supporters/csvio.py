"""CSV import (with a dry run) and export of the registry, in the format Excel in Japan uses."""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import IO, Iterable, Iterator

from sqlalchemy import func, select, update

from app.accounts.services import Viewer
from app.audit import services as audit
from app.dbtypes import insert_rows, utcnow
from app.errors import InvalidInput, NotFound
from app.extensions import db
from app.geography.models import District
from app.geography.services import list_districts
from app.i18n import gettext as _
from app.site import has_control_characters, strip_control_characters
from app.spreadsheet import (  # noqa: F401 - ENCODING_NAMES is used by views
    ENCODING_NAMES,
    control_problem,
    open_text,
    restore,
)
from app.supporters import bulk, services
from app.supporters.models import (
    BusinessCategory,
    Supporter,
    SupporterImport,
    SupporterImportRow,
)
from app.supporters.records import joining_date
from app.text import email_key, fold, japanese_date

# (column header, field) — the same headers for export and import, so a file round-trips.
COLUMNS = (
    ("種別", "kind"),
    ("氏名", "name"),
    ("ふりがな", "kana"),
    ("事業所名", "business_name"),
    ("事業所名ふりがな", "business_kana"),
    ("業種", "business_category"),
    ("担当者", "contact_person"),
    ("メールアドレス", "email"),
    ("電話番号", "phone"),
    ("郵便番号", "postal_code"),
    ("住所", "address"),
    ("地区", "district"),
    ("圏域", "area"),
    ("通信の受け取り方", "delivery"),
    ("状態", "status"),
    ("登録のきっかけ", "joined_via"),
    ("登録日", "joined_on"),
    ("登録研修日", "registration_training_on"),
    ("職員メモ", "notes"),
)
REQUIRED_HEADERS = ("氏名", "地区")

# Stored code ⇄ the Japanese word used in the file (the code itself is accepted too).
WORDS = {
    "kind": {"person": "個人", "business": "事業所"},
    "delivery": {"email": "メール", "post": "郵送", "both": "メールと郵送", "none": "送付しない"},
    "status": {"applied": "申込中", "active": "活動中", "paused": "休止中"},
    "joined_via": {"application": "本人の申込み", "staff": "職員が登録",
                   "former_consultee": "元相談者"},
}


@dataclass
class RowResult:
    line: int
    name: str
    data: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    delivery_guessed: bool = False  # no 通信の受け取り方 given: chosen from what the row has
    # Keys for finding the same person twice in one file ("" when the registry already has
    # them: that is the problem reported, once).
    email_key: str = ""
    name_key: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Review:
    """What the review page shows of a staged import: the counts, the first rows that will
    be imported and the first rows that will not (the rest stay in the database)."""
    total: int
    ok: int
    mobile: int
    missing_headers: list[str]
    preview: list[RowResult]
    problems: list[RowResult]
    # (area name, rows) of the rows to import in districts of areas the viewer does not
    # serve: once imported, that area's staff look after them, and the viewer's list
    # does not show them.
    outside: list[tuple[str, int]] = field(default_factory=list)
    # Headers of columns the registry has no place for: what they hold is not imported.
    ignored_headers: list[str] = field(default_factory=list)

    @property
    def bad(self) -> int:
        return self.total - self.ok


def _reverse(kind: str, value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    for code, word in WORDS[kind].items():
        if value in (code, word):
            return code
    return "?"


def _parse_date(value: str) -> date | None | str:
    """A date as written in the file (japanese_date: 2026/04/01, 令和8年4月1日 …); None when
    the cell is empty, "?" when it is not a date."""
    if not value.strip():
        return None
    return japanese_date(value) or "?"


def _lookups() -> tuple[dict, dict]:
    districts = {}
    for d in db.session.scalars(select(District)):
        districts[fold(d.name)] = d.id
        districts[fold(d.code)] = d.id
        districts[fold(d.name.replace("（例）", ""))] = d.id
    categories = {}
    for c in db.session.scalars(select(BusinessCategory)):
        categories[fold(c.name)] = c.id
        categories[fold(c.code)] = c.id
    return districts, categories


def default_delivery(data: dict) -> str:
    """How a row without 通信の受け取り方 gets the newsletter: by e-mail when it has an
    address, by post when it has a postal address, otherwise not at all."""
    if data.get("email"):
        return "email"
    if data.get("address") and data.get("postal_code"):
        return "post"
    return "none"


_DATES = ("joined_on", "registration_training_on")
# What an empty cell of a column gives (a column not here gives nothing, or a problem).
_EMPTY = {key: (None if key in _DATES else "") for _header, key in COLUMNS
          if key not in WORDS and key not in ("district", "business_category", "area")}
_HEADER = {key: header for header, key in COLUMNS}
_HEADERS = frozenset(_HEADER.values())
# The column of each field the checks name (a district or category is chosen by its name).
_FIELD_HEADER = dict(_HEADER, district_id=_HEADER["district"],
                     business_category_id=_HEADER["business_category"])


def _plan(headers: list[str]) -> tuple[dict, tuple[tuple[str, str, int], ...]]:
    """What every row of a file with these headers starts from (the values its missing
    columns give), and (header, field, the cell's place in a row) for each column it has:
    the columns may come in any order, and a column given twice counts once, the last."""
    where = {header: n for n, header in enumerate(headers)}
    start = {"kind": "person", "status": "active", "joined_via": "staff"}
    start.update((key, value) for key, value in _EMPTY.items()
                 if _HEADER[key] not in where)
    return start, tuple((header, key, where[header]) for header, key in COLUMNS
                        if header in where and key != "area")


def _row_to_data(cells: list[str], plan, districts: dict, categories: dict
                 ) -> tuple[dict, list[str]]:
    start, columns = plan
    problems = []
    data = dict(start)
    size = len(cells)
    controlled = has_control_characters("".join(cells), multiline=True)  # (rare: looked at once)
    for header, key, n in columns:
        raw = cells[n] if n < size else ""
        raw = restore(raw.strip()) if raw else ""
        if controlled and (problem := control_problem(header, raw)):
            # The row is not imported; the review shows the cell without them.
            problems.append(problem)
            raw = strip_control_characters(raw, multiline=True)
        if not raw:  # (most cells of a file: the quick way)
            if key in _EMPTY:
                data[key] = _EMPTY[key]
            elif key == "district":
                problems.append(_("地区が空です。"))
        elif key in WORDS:
            code = _reverse(key, raw)
            if code == "?":
                problems.append(_("%(col)s「%(value)s」は使えません。", col=header, value=raw))
            elif code:
                data[key] = code
        elif key == "district":
            if (district_id := districts.get(fold(raw))) is None:
                problems.append(_("地区「%(value)s」が見つかりません。", value=raw))
            else:
                data["district_id"] = district_id
        elif key == "business_category":
            if fold(raw) not in categories:
                problems.append(_("業種「%(value)s」が見つかりません。", value=raw))
            else:
                data["business_category_id"] = categories[fold(raw)]
        elif key in _DATES:
            parsed = _parse_date(raw)
            if parsed == "?":
                problems.append(_("%(col)s「%(value)s」は日付として読めません（例: 2026/04/01、令和8年4月1日）。",
                                  col=header, value=raw))
            else:
                data[key] = parsed
        else:
            data[key] = raw
    return data, problems


CHUNK = 1000  # rows checked, staged and written together
SHOWN = 200   # rows of each kind the review page lists


def _records(text: IO[str]) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The headers and the (line, cells) of each row that is not empty, read as they are
    needed. The line is the row's number in a spreadsheet (the header is line 1)."""
    reader = csv.reader(text)
    headers = [h.strip() for h in next(reader, [])]

    def rows():
        for line, cells in enumerate(reader, start=2):
            if "".join(cells).strip():
                yield line, cells
    return headers, rows()


def _chunks(items: Iterable, size: int = CHUNK) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Checker:
    """Checks rows a chunk at a time: each row on its own (the rules of the forms), then
    against the registry with a query or two per chunk."""

    def __init__(self, headers: list[str]):
        self.plan = _plan(headers)
        self.districts, self.categories = _lookups()
        self.district_ids = frozenset(self.districts.values())

    def row(self, line: int, cells: list[str]) -> RowResult:
        data, problems = _row_to_data(cells, self.plan, self.districts, self.categories)
        guessed = "delivery" not in data
        if guessed:
            data["delivery"] = default_delivery(data)
        data = services.normalise(data)
        # (as the registry names them: a business by its name, else the person)
        label = ((data.get("kind") == "business" and data.get("business_name"))
                 or data.get("name") or data.get("business_name") or "")
        for key, problem in services.validate(data, check_duplicates=False,
                                              district_ids=self.district_ids).items():
            # (in a file, the column each is about: 「住所」 alone does not say which cell)
            problems.append(_("%(col)s：%(problem)s", col=_FIELD_HEADER[key], problem=problem)
                            if key in _FIELD_HEADER else problem)
        if not problems:  # kept whole, as it will be written (the import copies it)
            data = bulk.record_for(data)
        return RowResult(line=line, name=label, data=data, problems=problems,
                         delivery_guessed=guessed)

    def chunk(self, records: list[tuple[int, list[str]]]) -> list[RowResult]:
        rows = [self.row(line, cells) for line, cells in records]
        registered(rows)
        return rows


def registered(rows: list[RowResult]) -> list[RowResult]:
    """Add a problem to each row whose person the registry already has; returns the rest."""
    for r in rows:  # the keys, made once: for the lookup and kept with the staged row
        r.email_key = email_key(r.data.get("email")) or ""
        r.name_key = services.name_phone_key(r.name, r.data.get("phone"))
    by_email, by_person = services.find_registered_keys([r.email_key for r in rows],
                                                        [r.name_key for r in rows])
    fine = []
    for r in rows:
        if (other := by_email.get(r.email_key)) is not None:
            r.problems.append(_("メールアドレスが登録済みの推進員（%(name)s）と同じです。",
                                name=other.display_name))
            r.email_key = ""
        if (other := by_person.get(r.name_key)) is not None:
            r.problems.append(_("氏名と電話番号が登録済みの推進員（%(name)s）と同じです。",
                                name=other.display_name))
            r.name_key = ""
        if r.ok:
            fine.append(r)
    return fine


def _from_json(data: dict) -> dict:
    for key in _DATES:
        if data.get(key):
            data[key] = date.fromisoformat(data[key])
    return data


_STAGED = ("import_id", "line", "ok", "name", "email_key", "name_key", "data", "problems")


def _staged(import_id: int, r: RowResult) -> tuple:
    """A checked row as it is kept (the columns of _STAGED)."""
    # (dates: the JSON columns' writer keeps them as ISO text; _from_json reads them back)
    data = dict(r.data, _guessed=True) if r.delivery_guessed else r.data
    return (import_id, r.line, r.ok, r.name[:200], r.email_key[:254], r.name_key[:300], data,
            r.problems)


_SHOWN_COLUMNS = (SupporterImportRow.line, SupporterImportRow.name, SupporterImportRow.data,
                  SupporterImportRow.problems)


def _result(row) -> RowResult:
    """A staged row (its _SHOWN_COLUMNS) as the dry run checked it."""
    data = _from_json(row.data)
    guessed = data.pop("_guessed", False)
    return RowResult(line=row.line, name=row.name, data=data, problems=list(row.problems),
                     delivery_guessed=guessed)


def _same_in_file(import_id: int) -> Counter:
    """Mark the rows that repeat an earlier row's e-mail address, or its name and phone
    number (found by the database, so that no file is held in memory). Returns how many
    rows that were to be imported it marked, per district."""
    Row = SupporterImportRow
    found: dict[int, list[str]] = {}
    for key, message in ((Row.email_key, _("メールアドレスが%(line)d行目と同じです。")),
                         (Row.name_key, _("氏名と電話番号が%(line)d行目と同じです。"))):
        first = (select(key.label("key"), func.min(Row.line).label("line"))
                 .where(Row.import_id == import_id, key != "")
                 .group_by(key).having(func.count() > 1).subquery())
        for row_id, line in db.session.execute(
                select(Row.id, first.c.line).join(first, (key == first.c.key)
                                                   & (Row.line > first.c.line))
                .where(Row.import_id == import_id)):
            found.setdefault(row_id, []).append(message % {"line": line})
    marked: Counter = Counter()
    for ids in _chunks(sorted(found)):
        rows = db.session.execute(select(Row.id, Row.problems, Row.ok,
                                         Row.data["district_id"].as_integer())
                                  .where(Row.id.in_(ids))).all()
        db.session.execute(update(Row), [
            {"id": row_id, "ok": False, "problems": list(problems) + found[row_id]}
            for row_id, problems, _ok, _district in rows])
        marked.update(district for _id, _problems, ok, district in rows if ok)
    return marked


def stage(upload: IO[bytes] | bytes, filename: str, staff_id: int | None) -> SupporterImport:
    """Check an uploaded file and keep its checked rows for the user's decision (nothing is
    imported yet). The file is read a chunk at a time: memory does not grow with its size."""
    stream = io.BytesIO(upload) if isinstance(upload, bytes) else upload
    text, encoding = open_text(stream)
    pending = SupporterImport(staff_id=staff_id, encoding=encoding,
                              filename=strip_control_characters(filename)[:200])
    db.session.add(pending)
    db.session.flush()
    try:
        _check_into(pending, text)
    except csv.Error:  # a cell of 128K characters, a NUL byte far into the file …
        db.session.rollback()
        raise InvalidInput(_("CSVファイルではないようです。Excelで「CSV（コンマ区切り）」として保存したファイルを選んでください。"),
                           field="file") from None
    if missing := pending.summary["missing_headers"]:
        db.session.rollback()
        raise InvalidInput(_("必要な列の見出しがありません: %(cols)s。1行目に、下の「列の見出し」のとおり見出しを入れてください。",
                             cols="、".join(missing)), field="file")
    if not pending.summary["total"]:
        db.session.rollback()
        raise InvalidInput(_("見出しの行のほかに、取り込む行がありません。"), field="file")
    db.session.commit()
    return pending


def _check_into(pending: SupporterImport, text: IO[str]) -> None:
    """The dry run: every row checked and kept with its problems, and the counts."""
    headers, records = _records(text)
    missing = [h for h in REQUIRED_HEADERS if h not in headers]
    per_district: Counter = Counter()  # the rows to import in each district
    if not missing:
        checker = _Checker(headers)
        for chunk in _chunks(records):
            rows = checker.chunk(chunk)
            per_district.update(r.data["district_id"] for r in rows if r.ok)
            insert_rows(SupporterImportRow.__table__, _STAGED,
                        [_staged(pending.id, r) for r in rows])
        per_district -= _same_in_file(pending.id)
    Row = SupporterImportRow
    counts = db.session.execute(
        select(func.count(Row.id), func.count(Row.id).filter(Row.ok))
        .where(Row.import_id == pending.id)).one()
    mobile = sum(1 for key in db.session.scalars(
        select(Row.email_key).where(Row.import_id == pending.id, Row.ok, Row.email_key != ""))
        if services.is_mobile_carrier(key))
    pending.summary = {"total": counts[0], "ok": counts[1], "mobile": mobile,
                       "missing_headers": missing,
                       "ignored_headers": [h for h in headers if h and h not in _HEADERS],
                       "districts": {str(key): n for key, n in per_district.items()}}


def review(pending: SupporterImport, *, actor) -> Review:
    """What the review page shows of a staged import to `actor` (who uploaded it)."""
    Row = SupporterImportRow

    def first(ok: bool) -> list[RowResult]:
        return [_result(r) for r in db.session.execute(
            select(*_SHOWN_COLUMNS).where(Row.import_id == pending.id, Row.ok == ok)
            .order_by(Row.line).limit(SHOWN))]
    preview = first(True)
    for row in preview:  # as it will be saved (with today's date for an active one with none)
        row.data = bulk.whole(row.data)
        row.data["joined_on"] = joining_date(row.data["status"], row.data["joined_on"])
    summary = pending.summary or {}
    return Review(total=summary.get("total", 0), ok=summary.get("ok", 0),
                  mobile=summary.get("mobile", 0),
                  missing_headers=summary.get("missing_headers", []),
                  preview=preview, problems=first(False),
                  outside=_outside(summary.get("districts", {}), Viewer.of(actor)),
                  ignored_headers=summary.get("ignored_headers", []))


def _outside(per_district: dict[str, int], viewer: Viewer) -> list[tuple[str, int]]:
    """(area name, rows) of the rows counted per district that the viewer does not see, in
    the areas' order."""
    if viewer.scope is None or not per_district:
        return []
    outside: dict[str, int] = {}
    for d in list_districts():
        if str(d.id) in per_district and not viewer.sees(d.area_id):
            outside[d.area.label] = outside.get(d.area.label, 0) + per_district[str(d.id)]
    return list(outside.items())


def import_token(pending: SupporterImport) -> str:
    """What the review page's form carries to name this staged file and no other: a finished
    import's number can be given to the next upload (SQLite reuses it), and a form left open
    in another tab must not decide about a file nobody reviewed."""
    made = f"{pending.id}\t{pending.created_at.isoformat()}\t{pending.filename}"
    return hashlib.sha256(made.encode()).hexdigest()[:32]


def get_pending(import_id: int, *, actor, token: str | None = None) -> SupporterImport:
    """A staged import, for the staff member who uploaded it (or an administrator): its
    problems name registered supporters, who may live outside the viewer's areas. With
    `token` (a decision sent from its review page), only the file that page showed."""
    pending = db.session.get(SupporterImport, import_id)
    if pending is None or not (getattr(actor, "is_admin", False)
                               or pending.staff_id == getattr(actor, "id", None)):
        raise NotFound(import_id)
    if token is not None and not hmac.compare_digest(token.encode(),
                                                     import_token(pending).encode()):
        raise NotFound(import_id)
    if pending.content and not pending.summary:  # staged by a version that kept the text
        _check_into(pending, io.StringIO(pending.content))
        pending.content = ""
        db.session.commit()
    return pending


def _ok_chunks(import_id: int, columns) -> Iterator[list]:
    """`columns` (line first) of the rows to import, a chunk at a time, in the file's order."""
    Row, line = SupporterImportRow, 0
    while True:
        chunk = db.session.execute(
            select(*columns).where(Row.import_id == import_id, Row.ok, Row.line > line)
            .order_by(Row.line).limit(CHUNK)).all()
        if not chunk:
            return
        yield chunk
        line = chunk[-1].line


# How long before a dry run began a change to the registry may still have been on its way
# (a request that had not committed yet when the dry run looked).
_IN_FLIGHT = timedelta(minutes=10)


def _taken_since(pending: SupporterImport) -> set[int]:
    """The lines whose person was registered since the dry run (by the keys it kept). When
    no supporter was added or changed since, none (and no staged row is read again)."""
    changed = select(Supporter.id).where(
        Supporter.updated_at >= pending.created_at - _IN_FLIGHT).limit(1)
    if db.session.scalar(changed) is None:
        return set()
    Row, taken = SupporterImportRow, set()
    for chunk in _ok_chunks(pending.id, (Row.line, Row.email_key, Row.name_key)):
        by_email, by_person = services.find_registered_keys(
            [r.email_key for r in chunk], [r.name_key for r in chunk])
        taken.update(r.line for r in chunk if r.email_key in by_email or r.name_key in by_person)
    return taken


def commit_import(pending: SupporterImport, *, actor) -> int:
    """Write every row that passed the dry run in one transaction (all or none), then forget
    the file. A row whose person was registered since the dry run is left out."""
    try:
        # The import is taken first: a second request for it (a double click) waits here
        # until the first has finished, then finds it gone. On SQLite this also takes the
        # write lock before any row is read.
        taken_now = db.session.execute(
            update(SupporterImport).where(SupporterImport.id == pending.id)
            .values(filename=SupporterImport.filename)).rowcount
        if taken_now != 1:
            raise NotFound(pending.id)
        # Checked against the registry before anything is written: the queries then see the
        # registry as its statistics describe it, not one growing under them.
        Row = SupporterImportRow
        for lines in _chunks(sorted(_taken_since(pending))):
            db.session.execute(update(Row).where(Row.import_id == pending.id,
                                                 Row.line.in_(lines)).values(ok=False))
        # A thousand lines of the file at a time (at most a thousand supporters each).
        last = db.session.scalar(select(func.max(Row.line)).where(Row.import_id == pending.id))
        count = bulk.add_staged(
            pending.id, ((first, min(first + CHUNK - 1, last))
                         for first in range(2, (last or 0) + 1, CHUNK)),
            "imported", actor=actor)
        audit.record("supporter.import", "supporter_import", pending.id,
                     params={"people": count, "name": pending.filename}, actor=actor)
        db.session.delete(pending)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return count


def discard_import(pending: SupporterImport) -> None:
    db.session.delete(pending)
    db.session.commit()


def purge_stale_imports(hours: int = 24) -> int:
    """Forget staged files nobody decided on (their rows hold personal data)."""
    cutoff = utcnow() - timedelta(hours=hours)
    stale = list(db.session.scalars(select(SupporterImport).where(
        SupporterImport.created_at < cutoff)))
    for pending in stale:
        db.session.delete(pending)
    db.session.commit()
    return len(stale)


def _cell(s: Supporter, key: str) -> str:
    if key in WORDS:
        value = getattr(s, key)
        return WORDS[key].get(value, value or "")
    if key == "district":
        return s.district.name if s.district else ""
    if key == "area":
        return s.district.area.name if s.district else ""
    if key == "business_category":
        return s.business_category.name if s.business_category else ""
    value = getattr(s, key)
    if isinstance(value, date):
        return value.strftime("%Y/%m/%d")
    return value or ""


def export_rows(filters: services.RegistryFilters) -> Iterator[list[str]]:
    """The rows of the export (without the header), read lazily.

    The query runs inside the generator, so that it uses the session of the streaming
    response rather than one already closed when the view returned.
    """
    for s in services.iter_filtered(filters):
        yield [_cell(s, key) for _header, key in COLUMNS]


def export_header() -> list[str]:
    return [header for header, _key in COLUMNS]


def record_export(filters: services.RegistryFilters, count: int, action: str = "supporter.export", *,
                  actor) -> None:
    audit.record(action, "supporter", None, params={"people": count, "filters": filters.codes()},
                 actor=actor)
    db.session.commit()
