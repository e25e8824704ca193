"""CSV import (with a dry run) and export of the registry, in the format Excel in Japan uses."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Iterator

from sqlalchemy import select

from app.audit import services as audit
from app.errors import InvalidInput, NotFound
from app.extensions import db
from app.geography.models import District
from app.i18n import gettext as _
from app.spreadsheet import ENCODING_NAMES, decode, restore  # noqa: F401 - used by views
from app.supporters import services
from app.supporters.models import BusinessCategory, Supporter, SupporterImport
from app.text import digits, fold

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

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class DryRun:
    rows: list[RowResult]
    missing_headers: list[str] = field(default_factory=list)

    @property
    def valid(self) -> list[RowResult]:
        return [r for r in self.rows if r.ok]

    @property
    def invalid(self) -> list[RowResult]:
        return [r for r in self.rows if not r.ok]


def _reverse(kind: str, value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    for code, word in WORDS[kind].items():
        if value in (code, word):
            return code
    return "?"


def _parse_date(value: str) -> date | None | str:
    value = value.strip().replace("/", "-")
    if not value:
        return None
    try:
        return date.fromisoformat("-".join(part.zfill(2) for part in value.split("-")))
    except ValueError:
        return "?"


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


def _row_to_data(values: dict, districts: dict, categories: dict) -> tuple[dict, list[str]]:
    problems = []
    data = {"kind": "person", "status": "active", "joined_via": "staff"}
    for header, key in COLUMNS:
        raw = restore((values.get(header) or "").strip())
        if key in WORDS:
            code = _reverse(key, raw)
            if code == "?":
                problems.append(_("%(col)s「%(value)s」は使えません。", col=header, value=raw))
            elif code:
                data[key] = code
        elif key == "district":
            if not raw:
                problems.append(_("地区が空です。"))
            elif fold(raw) not in districts:
                problems.append(_("地区「%(value)s」が見つかりません。", value=raw))
            else:
                data["district_id"] = districts[fold(raw)]
        elif key == "business_category":
            if raw and fold(raw) not in categories:
                problems.append(_("業種「%(value)s」が見つかりません。", value=raw))
            elif raw:
                data["business_category_id"] = categories[fold(raw)]
        elif key in ("joined_on", "registration_training_on"):
            parsed = _parse_date(raw)
            if parsed == "?":
                problems.append(_("%(col)s「%(value)s」は日付として読めません（例: 2026/04/01）。",
                                  col=header, value=raw))
            else:
                data[key] = parsed
        elif key != "area":
            data[key] = raw
    return data, problems


def dry_run(text: str) -> DryRun:
    """Check every row without writing anything; problems are in the user's language."""
    reader = csv.DictReader(io.StringIO(text))
    headers = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = headers
    missing = [h for h in REQUIRED_HEADERS if h not in headers]
    if missing:
        return DryRun(rows=[], missing_headers=missing)
    districts, categories = _lookups()
    results: list[RowResult] = []
    seen_emails: dict[str, int] = {}
    seen_name_phone: dict[tuple[str, str], int] = {}
    for line, values in enumerate(reader, start=2):
        if not any((v or "").strip() for v in values.values() if isinstance(v, str)):
            continue
        data, problems = _row_to_data(values, districts, categories)
        guessed = "delivery" not in data
        if guessed:
            data["delivery"] = default_delivery(data)
        data = services.normalise(data)
        label = data.get("name") or data.get("business_name") or ""
        problems += list(services.validate(data, check_duplicates=False).values())
        email_key = (data.get("email") or "").lower()
        if email_key:
            other = services.find_by_email(email_key)
            if other is not None:
                problems.append(_("メールアドレスが登録済みの推進員（%(name)s）と同じです。",
                                  name=other.display_name))
            elif email_key in seen_emails:
                problems.append(_("メールアドレスが%(line)d行目と同じです。", line=seen_emails[email_key]))
            seen_emails.setdefault(email_key, line)
        name_key = (fold(label), digits(data.get("phone")))
        if all(name_key):
            other = services.find_by_name_and_phone(label, data.get("phone", ""))
            if other is not None:
                problems.append(_("氏名と電話番号が登録済みの推進員（%(name)s）と同じです。",
                                  name=other.display_name))
            elif name_key in seen_name_phone:
                problems.append(_("氏名と電話番号が%(line)d行目と同じです。",
                                  line=seen_name_phone[name_key]))
            seen_name_phone.setdefault(name_key, line)
        results.append(RowResult(line=line, name=label, data=data, problems=problems,
                                 delivery_guessed=guessed))
    return DryRun(rows=results)


def stage(raw: bytes, filename: str, staff_id: int | None) -> tuple[SupporterImport, DryRun]:
    """Keep an uploaded file for the user's decision and return its dry run."""
    if not raw:
        raise InvalidInput(_("ファイルが空です。"), field="file")
    text, encoding = decode(raw)
    result = dry_run(text)
    pending = SupporterImport(staff_id=staff_id, filename=filename[:200], encoding=encoding,
                              content=text)
    db.session.add(pending)
    db.session.commit()
    return pending, result


def get_pending(import_id: int) -> SupporterImport:
    pending = db.session.get(SupporterImport, import_id)
    if pending is None:
        raise NotFound(import_id)
    return pending


def commit_import(pending: SupporterImport, *, actor) -> int:
    """Write every valid row in one transaction (all or none), then forget the file."""
    result = dry_run(pending.content)
    count = 0
    try:
        for row in result.valid:
            services.add_supporter(row.data, "imported", actor=actor)
            count += 1
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
