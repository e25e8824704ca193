"""The directory of partner agencies (つなぎ先): search, edit (admins), CSV, suggestions.

Partners know no concerns: a concern category is only a code here (`category_codes`); the
concerns domain, above, asks `suggest()` for the agencies that serve a district and take a
category.
"""
from __future__ import annotations

import csv
import io
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.audit import services as audit
from app.errors import InvalidInput, NotFound, raise_problems
from app.extensions import db
from app.geography.models import Area, District
from app.i18n import gettext as _
from app.labels import AGENCY_KIND
from app.partners.models import KINDS, Agency
from app.spreadsheet import control_problem, decode, restore
from app.text import clean, email_text, fold, phone_text, sort_key, tidy
from app.validators import is_valid_email, phone_problem

LIMITS = {"name": 200, "kana": 200, "phone": 40, "fax": 40, "email": 254, "postal_code": 10,
          "address": 300, "hours": 300, "contact_person": 100, "notes": 5000}
FIELDS = tuple(LIMITS) + ("kind", "active", "area_ids", "district_ids", "category_codes")


def list_agencies(q: str = "", kind: str = "", area_id: int | None = None,
                  active_only: bool = False) -> list[Agency]:
    """Agencies in 五十音 order of their reading; `q` matches name, reading, address, notes."""
    query = select(Agency).options(selectinload(Agency.areas), selectinload(Agency.districts))
    if kind in KINDS:
        query = query.where(Agency.kind == kind)
    if active_only:
        query = query.where(Agency.active.is_(True))
    found = list(db.session.scalars(query.order_by(Agency.sort_key, Agency.id)))
    if area_id:
        found = [a for a in found if not a.areas and not a.districts
                 or any(x.id == area_id for x in a.areas)
                 or any(d.area_id == area_id for d in a.districts)]
    words = fold(q).split()
    if words:
        found = [a for a in found
                 if all(w in fold(" ".join((a.name, a.kana, a.address, a.contact_person, a.notes,
                                            str(AGENCY_KIND.get(a.kind, "")))))
                        for w in words)]
    return found


def get_agency(agency_id: int) -> Agency:
    agency = db.session.get(Agency, agency_id)
    if agency is None:
        raise NotFound(agency_id)
    return agency


def problems(data: dict) -> dict[str, str]:
    found = {}
    if not tidy(data.get("name")):
        found["name"] = _("名称を入力してください。")
    if data.get("kind") not in KINDS:
        found["kind"] = _("種類を選んでください。")
    for key, limit in LIMITS.items():
        if len(str(data.get(key) or "")) > limit:
            found.setdefault(key, _("%(max)d文字以内で入力してください。", max=limit))
    for key in ("phone", "fax"):
        if problem := phone_problem(data.get(key)):
            found.setdefault(key, problem)
    email = email_text(data.get("email"))
    if email and not is_valid_email(email):
        found.setdefault("email", _("メールアドレスの形式が正しくありません（例: hanako@example.jp）。"))
    return found


def save_agency(agency: Agency | None, data: dict, *, actor) -> Agency:
    """Add or change an agency (admins); raises InvalidInput with every problem at once."""
    raise_problems(problems(data))
    agency = _fill(agency, data)
    db.session.flush()
    audit.record("partner.save", "agency", agency.id, params={"name": agency.name}, actor=actor)
    db.session.commit()
    return agency


def _fill(agency: Agency | None, data: dict) -> Agency:
    """Write checked data into an agency (a new one when None); the caller commits."""
    if agency is None:
        agency = Agency()
        db.session.add(agency)
    for key in LIMITS:
        value = data.get(key) or ""
        setattr(agency, key, value.strip() if key == "notes" else
                (phone_text(value) if key in ("phone", "fax") else email_text(value)
                 if key == "email" else clean(value) if key == "postal_code" else tidy(value)))
    agency.kind = data["kind"]
    agency.active = bool(data.get("active", True))
    agency.category_codes = sorted({str(c) for c in data.get("category_codes") or []})
    agency.areas = list(db.session.scalars(select(Area).where(
        Area.id.in_(data.get("area_ids") or []))))
    agency.districts = list(db.session.scalars(select(District).where(
        District.id.in_(data.get("district_ids") or []))))
    agency.sort_key = sort_key(agency.kana or agency.name)
    return agency


def suggest(district: District | None, category_code: str = "", limit: int = 8) -> list[Agency]:
    """Active agencies for a concern: those serving its district first, then its area or the
    whole town; among them, those that take its category first."""
    ranked = []
    for agency in list_agencies(active_only=True):
        closeness = agency.serves(district)
        if not closeness:
            continue
        takes = not agency.category_codes or category_code in agency.category_codes
        ranked.append(((-closeness, not takes, KINDS.index(agency.kind), agency.sort_key), agency))
    return [agency for _key, agency in sorted(ranked, key=lambda pair: pair[0])][:limit]


# --- CSV ----------------------------------------------------------------------------------

COLUMNS = (("種類", "kind"), ("名称", "name"), ("ふりがな", "kana"), ("電話番号", "phone"),
           ("FAX", "fax"), ("メールアドレス", "email"), ("郵便番号", "postal_code"),
           ("住所", "address"), ("受付時間", "hours"), ("担当者", "contact_person"),
           ("担当する圏域", "areas"), ("担当する地区", "districts"), ("受ける分類", "categories"),
           ("メモ", "notes"), ("有効", "active"))


def export_rows(agencies: list[Agency]):
    names = dict(category_choices())
    for a in agencies:
        yield [str(AGENCY_KIND.get(a.kind, a.kind)), a.name, a.kana, a.phone, a.fax, a.email,
               a.postal_code, a.address, a.hours, a.contact_person,
               "、".join(x.name for x in a.areas), "、".join(d.name for d in a.districts),
               "、".join(names.get(code, code) for code in a.category_codes), a.notes,
               "はい" if a.active else "いいえ"]


def import_csv(raw: bytes, *, actor) -> int:
    """Add or update (by name) every row of a CSV in the export's format, all or nothing:
    with any problem nothing is saved and InvalidInput lists every row's problems."""
    text, _encoding = decode(raw)
    reader = csv.DictReader(io.StringIO(text))
    headers = {header for header, _key in COLUMNS}
    missing = [h for h in ("種類", "名称") if h not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(_("見出しの行に「%(names)s」がありません。書き出したCSVの形で作ってください。",
                             names="」「".join(missing)), field="file")
    kinds = {fold(str(label)): code for code, label in AGENCY_KIND.items()} | {k: k for k in KINDS}
    areas = {fold(a.name): a.id for a in db.session.scalars(select(Area))}
    categories = {fold(name): code for code, name in category_choices()} | {
        fold(code): code for code, _name in category_choices()}
    districts = {fold(d.name): d.id for d in db.session.scalars(select(District))}
    rows, errors = [], []
    for line, row in enumerate(reader, start=2):
        cells = {key: restore((row.get(header) or "").strip()) for header, key in COLUMNS
                 if header in headers}
        if not any(cells.values()):
            continue
        data = {key: cells.get(key, "") for key in LIMITS}
        data["kind"] = kinds.get(fold(cells.get("kind", "")), "")
        data["active"] = cells.get("active", "はい") not in ("いいえ", "no", "0", "false")
        data["category_codes"] = []
        unknown_categories = []
        for name in _split(cells.get("categories", "")):
            (data["category_codes"].append(categories[fold(name)]) if fold(name) in categories
             else unknown_categories.append(name))
        data["area_ids"], data["district_ids"] = [], []
        unknown = []
        for name in _split(cells.get("areas", "")):
            (data["area_ids"].append(areas[fold(name)]) if fold(name) in areas else unknown.append(name))
        for name in _split(cells.get("districts", "")):
            (data["district_ids"].append(districts[fold(name)]) if fold(name) in districts
             else unknown.append(name))
        found = problems(data)
        for header, key in COLUMNS:
            if problem := control_problem(header, cells.get(key, "")):
                found[key] = problem
        if unknown:
            found["areas"] = _("地域名が見つかりません: %(names)s", names="、".join(unknown))
        if unknown_categories:
            found["categories"] = _("分類が見つかりません: %(names)s",
                                    names="、".join(unknown_categories))
        if found:
            errors.append(_("%(line)d行目: %(problems)s", line=line, problems=" / ".join(found.values())))
        rows.append(data)
    if errors:
        raise InvalidInput("\n".join(errors), field="file")
    if not rows:
        raise InvalidInput(_("取り込む行がありません。"), field="file")
    by_name = {a.name: a for a in db.session.scalars(select(Agency))}
    for data in rows:
        _fill(by_name.get(tidy(data["name"])), data)
    audit.record("partner.import", "agency", None, params={"count": len(rows)}, actor=actor)
    db.session.commit()
    return len(rows)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "、").replace("，", "、").split("、")
            if part.strip()]


def record_export(count: int, *, actor) -> None:
    audit.record("partner.export", "agency", None, params={"count": count}, actor=actor)
    db.session.commit()



# The concern categories an agency may take: the concerns domain, above, registers a source
# of (code, name) pairs here (docs/architecture.md: partners know no concerns).
CATEGORY_SOURCES: list[Callable[[], list[tuple[str, str]]]] = []


def category_choices() -> list[tuple[str, str]]:
    return [choice for source in CATEGORY_SOURCES for choice in source()]
