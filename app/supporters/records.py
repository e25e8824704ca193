"""Supporter records: the fields, their checks, creating, changing and reading them."""
from __future__ import annotations

from datetime import date
from typing import Collection

from sqlalchemy import func, select

from app.audit import services as audit
from app.errors import InvalidState, NotFound, raise_problems
from app.extensions import db
from app.formatting import format_date, today_tokyo
from app.geography.models import District
from app.geography.services import DISTRICT_COUNTS
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.labels import HELP_KIND
from app.supporters.history import display_value, record_change
from app.supporters.models import (
    DELIVERIES,
    JOINED_VIA,
    KINDS,
    STATUSES,
    Supporter,
)
from app.supporters.searchindex import with_terms
from app.text import digits, email_key, email_text, fold, is_kana, phone_text, postal_digits, tidy
from app.validators import is_valid_email, phone_problem

# Fields a staff member may edit, in form order.
EDITABLE = (
    "kind", "name", "kana", "business_name", "business_kana", "business_category_id",
    "contact_person", "email", "phone", "postal_code", "address", "district_id", "delivery",
    "status", "joined_via", "joined_on", "registration_training_on", "notes",
    "can_help", "help_times",
)
# Fields a supporter may edit on their own page.
SELF_EDITABLE = ("email", "phone", "postal_code", "address", "district_id", "delivery",
                 "can_help", "help_times")
LIVE_STATUSES = ("applied", "active", "paused")
ERASED_STATUSES = ("withdrawn", "declined")
TEXT_FIELDS = ("name", "kana", "business_name", "business_kana", "contact_person",
                "phone", "postal_code", "address")
# The longest each text may be (the columns' sizes).
_LIMITS = {"name": 100, "kana": 100, "business_name": 200, "business_kana": 200,
           "contact_person": 100, "email": 254, "phone": 40, "postal_code": 10, "address": 300,
           "help_times": 200}
# Kept exactly as typed (only spaces tidied): ㈱, ①, 髙 and ～ are what people wrote.
_AS_TYPED = ("name", "kana", "business_name", "business_kana", "contact_person", "address")


# --- validation ------------------------------------------------------------------------

def normalise(data: dict) -> dict:
    """Tidy typed values: names and addresses as typed (spaces tidied), the phone number with
    ASCII digits, the postal code as its 7 digits, empty e-mail → None."""
    out = dict(data)
    for key in _AS_TYPED:
        if key in out:
            out[key] = tidy(out[key])
    if "phone" in out:
        out["phone"] = phone_text(out["phone"])
    if "postal_code" in out:
        code = postal_digits(out["postal_code"])
        out["postal_code"] = code if code is not None else tidy(out["postal_code"])
    if "email" in out:
        out["email"] = email_text(out["email"]) or None
    if "notes" in out:
        out["notes"] = (out["notes"] or "").strip()
    for key in ("district_id", "business_category_id"):
        if key in out and not out[key]:
            out[key] = None
    if "can_help" in out:  # in HELP_KIND's order, once each
        chosen = set(out["can_help"] or [])
        out["can_help"] = [code for code in HELP_KIND if code in chosen] + sorted(
            chosen - HELP_KIND.keys())
    return out


def validate(data: dict, *, exclude_id: int | None = None, check_duplicates: bool = True,
             district_ids: Collection[int] | None = None) -> dict[str, str]:
    """Problems with a supporter's data, as {field: message in the user's language}.
    `district_ids`, when given, are the districts that exist (else each is looked up)."""
    problems: dict[str, str] = {}
    kind = data.get("kind", "person")
    if kind not in KINDS:
        problems["kind"] = _("種別を選んでください。")
    if kind == "person":
        if not data.get("name"):
            problems["name"] = _("氏名を入力してください。")
        if not data.get("kana"):
            problems["kana"] = _("ふりがなを入力してください。")
    if kind == "business" and not data.get("business_name"):
        problems["business_name"] = _("事業所名を入力してください。")
    for key in ("kana", "business_kana"):
        if data.get(key) and not is_kana(data[key]) and key not in problems:
            problems[key] = _("ふりがなは、ひらがなかカタカナで入力してください。")
    email = data.get("email")
    if email and not is_valid_email(email):
        problems["email"] = _("メールアドレスの形式が正しくありません（例: hanako@example.jp）。")
    if phone := phone_problem(data.get("phone")):
        problems["phone"] = phone
    if data.get("postal_code") and postal_digits(data["postal_code"]) is None:
        problems["postal_code"] = _("郵便番号は7桁の数字で入力してください（例: 188-0012）。")
    delivery = data.get("delivery", "post")
    if delivery not in DELIVERIES:
        problems["delivery"] = _("通信の受け取り方を選んでください。")
    if delivery in ("email", "both") and not email and "email" not in problems:
        problems["email"] = _("メールで受け取るには、メールアドレスが必要です。")
    if delivery in ("post", "both"):
        if not data.get("address") and "address" not in problems:
            problems["address"] = _("郵送で受け取るには、住所が必要です。")
        if not data.get("postal_code") and "postal_code" not in problems:
            problems["postal_code"] = _("郵送で受け取るには、郵便番号が必要です。")
    if data.get("status", "applied") not in STATUSES:
        problems["status"] = _("状態を選んでください。")
    if data.get("joined_via", "staff") not in JOINED_VIA:
        problems["joined_via"] = _("登録のきっかけを選んでください。")
    joined = data.get("joined_on")
    if isinstance(joined, date) and joined > today_tokyo():  # a typo of the year, most likely
        problems["joined_on"] = _("登録日が先の日付（%(day)s）になっています。今日までの日付を入力してください。",
                                  day=format_date(joined))
    if any(code not in HELP_KIND for code in data.get("can_help") or []):
        problems["can_help"] = _("協力できることを選び直してください。")
    for key, limit in _LIMITS.items():  # the columns' sizes (the import has no form)
        if (value := data.get(key)) and len(value) > limit and key not in problems:
            problems[key] = _("%(max)d文字以内で入力してください。", max=limit)
    if data.get("district_id") and (data["district_id"] not in district_ids
                                    if district_ids is not None
                                    else db.session.get(District, data["district_id"]) is None):
        problems["district_id"] = _("地区を選び直してください。")
    if check_duplicates and "email" not in problems and email:
        other = find_by_email(email, exclude_id=exclude_id)
        if other is not None:
            problems["email"] = _("このメールアドレスはすでに登録されています（%(name)s）。",
                                  name=other.display_name)
    return problems


def name_phone_key(name: str | None, phone: str | None) -> str:
    """The key under which one person is the same twice: the name ignoring spaces and width,
    and the phone's digits ("" without either)."""
    folded, phone_digits = fold(name), digits(phone)
    return f"{folded[:250]}\t{phone_digits[:40]}" if folded and phone_digits else ""


def find_registered(emails=(), people=(), exclude_id: int | None = None
                    ) -> tuple[dict[str, Supporter], dict[str, Supporter]]:
    """Live supporters with one of these e-mail addresses, or one of these (name, phone):
    {email key: supporter} and {name_phone_key: supporter}, with one query for each however
    many are asked (the import asks for a thousand rows at once)."""
    return find_registered_keys({email_key(e) for e in emails} - {None},
                                {name_phone_key(name, phone) for name, phone in people} - {""},
                                exclude_id)


def find_registered_keys(email_keys, name_keys, exclude_id: int | None = None
                         ) -> tuple[dict[str, Supporter], dict[str, Supporter]]:
    """`find_registered` for keys already made (`email_key`, `name_phone_key`): the import
    keeps them with each checked row."""
    live = [Supporter.status.in_(LIVE_STATUSES)]
    if exclude_id:
        live.append(Supporter.id != exclude_id)
    by_email: dict[str, Supporter] = {}
    keys = set(email_keys) - {None, ""}
    if keys:
        for s in db.session.scalars(select(Supporter).where(Supporter.email_key.in_(keys), *live)):
            by_email.setdefault(s.email_key, s)
    by_person: dict[str, Supporter] = {}
    phones = {key.rpartition("\t")[2] for key in name_keys if key}
    if phones:
        for s in db.session.scalars(with_terms(select(Supporter).where(*live), sorted(phones))):
            for name in (s.name, s.business_name):
                if key := name_phone_key(name, s.phone):
                    by_person.setdefault(key, s)
    return by_email, by_person


def find_by_email(email: str, exclude_id: int | None = None) -> Supporter | None:
    return find_registered(emails=[email], exclude_id=exclude_id)[0].get(email_key(email))


def find_by_name_and_phone(name: str, phone: str, exclude_id: int | None = None) -> Supporter | None:
    """A live supporter with the same name (ignoring spaces and width) and phone digits."""
    key = name_phone_key(name, phone)
    if not key:
        return None
    return find_registered(people=[(name, phone)], exclude_id=exclude_id)[1].get(key)


def possible_duplicates(s: Supporter, scope: frozenset[int] | None = None) -> list[Supporter]:
    """Other live supporters with the same e-mail, or the same name and phone (only those
    the viewer may see)."""
    found = []
    if s.email:
        other = find_by_email(s.email, exclude_id=s.id)
        if other:
            found.append(other)
    other = find_by_name_and_phone(s.display_name, s.phone, exclude_id=s.id)
    if other and other not in found:
        found.append(other)
    return [o for o in found if scope is None or area_of(o) is None or area_of(o) in scope]


# --- create / change -------------------------------------------------------------------------

def _checked(data: dict, exclude_id: int | None = None) -> dict:
    data = normalise(data)
    raise_problems(validate(data, exclude_id=exclude_id))
    return data


def joining_date(status: str | None, joined_on):
    """The date a supporter joined: as given, else today for one who is active now."""
    if status == "active" and joined_on is None:
        return today_tokyo()
    return joined_on


def add_supporter(data: dict, action: str, *, actor) -> Supporter:
    """Add a supporter from checked data with its first history entry (the caller commits)."""
    supporter = Supporter(**{k: v for k, v in data.items()
                             if k in EDITABLE or k in ("consent_at", "consent_version")})
    supporter.joined_on = joining_date(supporter.status, supporter.joined_on)
    db.session.add(supporter)
    db.session.flush()
    record_change(supporter, action, actor=actor)
    return supporter


def create_supporter(data: dict, *, actor) -> Supporter:
    """Register a supporter from staff-entered data; raises InvalidInput with every problem."""
    supporter = add_supporter(_checked(data), "created", actor=actor)
    audit.record("supporter.create", "supporter", supporter.id, actor=actor)
    db.session.commit()
    return supporter


def update_supporter(s: Supporter, data: dict, *, actor, fields=EDITABLE) -> dict:
    """Change the given fields; returns {field: [old, new]} as written to the history."""
    if s.status in ERASED_STATUSES:
        raise InvalidState(_("退会した推進員の情報は変更できません。"))
    merged = {key: getattr(s, key) for key in EDITABLE}
    merged.update({k: v for k, v in data.items() if k in fields})
    merged = _checked(merged, exclude_id=s.id)
    changes = {}
    for key in fields:
        old, new = getattr(s, key), merged[key]
        if (old or None) != (new or None):
            changes[key] = [display_value(key, old), display_value(key, new)]
            setattr(s, key, new)
    if "delivery" in changes and s.delivery in ("email", "both"):
        s.unsubscribed_at = None  # chose e-mail again after unsubscribing
    if "email" in changes:  # a new address is tried afresh
        s.email_held_at, s.email_hold_reason, s.soft_bounces = None, "", 0
    if "notes" in changes:  # staff-only notes: say that they changed, not what they said
        changes["notes"] = ["…", "…"]
    if changes:
        record_change(s, "updated", changes, actor=actor)
        db.session.commit()
    return changes


def get_supporter(supporter_id: int) -> Supporter:
    s = db.session.get(Supporter, supporter_id)
    if s is None:
        raise NotFound(supporter_id)
    return s


def view_supporter(supporter_id: int, *, actor) -> Supporter:
    """Get a record for a staff member to read; the view is written to the audit log."""
    s = get_supporter(supporter_id)
    audit.record("supporter.view", "supporter", s.id, actor=actor)
    db.session.commit()
    return s




def live_per_district() -> dict[int, int]:
    """How many live supporters each district has (the geography overview)."""
    return dict(db.session.execute(
        select(Supporter.district_id, func.count(Supporter.id))
        .where(Supporter.status.in_(LIVE_STATUSES)).group_by(Supporter.district_id)).all())


DISTRICT_COUNTS[_l("推進員（申込中・活動中・休止中）")] = live_per_district


def area_of(s: Supporter) -> int | None:
    """The area a supporter's district lies in (None: no district)."""
    return s.district.area_id if s.district is not None else None
