"""The rules of the registry: creating, changing, approving, searching and erasing supporters."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from math import ceil

from flask import current_app
from sqlalchemy import case, delete, event, func, or_, select
from sqlalchemy.orm import Session, joinedload, load_only

from app import actors, submissions
from app.audit import services as audit
from app.dbtypes import utcnow
from app.errors import InvalidInput, InvalidState, NotFound, raise_problems
from app.extensions import db
from app.formatting import today_tokyo
from app.geography.models import Area, District
from app.geography.services import DISTRICT_COUNTS
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.outbox import services as outbox
from app.signals import supporter_erased
from app.supporters.models import (
    DELIVERIES,
    JOINED_VIA,
    KINDS,
    STATUSES,
    BusinessCategory,
    LoginLink,
    Supporter,
    SupporterChange,
    SupporterSearchTerm,
)
from app.text import clean, digits, fold, fold_words, is_kana, postal_digits, sort_key, tidy
from app.validators import is_valid_email

# Fields a staff member may edit, in form order.
EDITABLE = (
    "kind", "name", "kana", "business_name", "business_kana", "business_category_id",
    "contact_person", "email", "phone", "postal_code", "address", "district_id", "delivery",
    "status", "joined_via", "joined_on", "registration_training_on", "notes",
)
# Fields a supporter may edit on their own page.
SELF_EDITABLE = ("email", "phone", "postal_code", "address", "district_id", "delivery")
LIVE_STATUSES = ("applied", "active", "paused")
ERASED_STATUSES = ("withdrawn", "declined")
_TEXT_FIELDS = ("name", "kana", "business_name", "business_kana", "contact_person",
                "phone", "postal_code", "address")
# Kept exactly as typed (only spaces tidied): ㈱, ①, 髙 and ～ are what people wrote.
_AS_TYPED = ("name", "kana", "business_name", "business_kana", "contact_person", "address")


# --- search terms and sort key ------------------------------------------------------------

def _suffixes(word: str) -> list[str]:
    return [word[i:] for i in range(len(word))]


def search_terms_for(s: Supporter) -> set[str]:
    """Folded terms under which a supporter is found by a prefix search.

    Every suffix of a name, reading or business name (so "田" finds 山田 and "不動産" finds
    山田不動産), each word of them, the phone digits and their last four, and the e-mail
    address with its local part and domain.
    """
    terms: set[str] = set()
    for text in (s.name, s.kana, s.business_name, s.business_kana, s.contact_person):
        terms.update(fold_words(text))
        terms.update(_suffixes(fold(text)))
    phone = digits(s.phone)
    if phone:
        terms.update({phone, phone[-4:]})
    if s.email:
        email = s.email.strip().lower()
        local, _, domain = email.partition("@")
        terms.update({email, local, domain})
    return {t[:254] for t in terms if t}


def sort_key_for(s: Supporter) -> str:
    """五十音 order (as a dictionary sorts): by the reading, by the name when there is none."""
    reading = s.business_kana if s.kind == "business" else s.kana
    return sort_key(reading or s.display_name)[:200]


@event.listens_for(Session, "before_flush")
def _refresh_derived(session: Session, flush_context, instances) -> None:
    """Keep sort key, e-mail key and search terms in step with every supporter change."""
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, Supporter):
            continue
        obj.sort_key = sort_key_for(obj)
        obj.email_key = obj.email.strip().lower() if obj.email else None
        wanted = search_terms_for(obj)
        have = {t.term: t for t in obj.search_terms}
        for term, row in have.items():
            if term not in wanted:
                obj.search_terms.remove(row)
        for term in wanted - have.keys():
            obj.search_terms.append(SupporterSearchTerm(term=term))


# --- validation ------------------------------------------------------------------------

def normalise(data: dict) -> dict:
    """Tidy typed values: names and addresses as typed (spaces tidied), the phone number with
    ASCII digits, the postal code as its 7 digits, empty e-mail → None."""
    out = dict(data)
    for key in _AS_TYPED:
        if key in out:
            out[key] = tidy(out[key])
    if "phone" in out:
        out["phone"] = clean(out["phone"])
    if "postal_code" in out:
        code = postal_digits(out["postal_code"])
        out["postal_code"] = code if code is not None else tidy(out["postal_code"])
    if "email" in out:
        out["email"] = (out["email"] or "").strip() or None
    if "notes" in out:
        out["notes"] = (out["notes"] or "").strip()
    for key in ("district_id", "business_category_id"):
        if key in out and not out[key]:
            out[key] = None
    return out


def validate(data: dict, *, exclude_id: int | None = None,
             check_duplicates: bool = True) -> dict[str, str]:
    """Problems with a supporter's data, as {field: message in the user's language}."""
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
    phone = digits(data.get("phone"))
    if data.get("phone") and not 10 <= len(phone) <= 11:
        problems["phone"] = _("電話番号は市外局番から10〜11桁で入力してください（例: 042-123-4567）。")
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
    if data.get("district_id") and db.session.get(District, data["district_id"]) is None:
        problems["district_id"] = _("地区を選び直してください。")
    if check_duplicates and "email" not in problems and email:
        other = find_by_email(email, exclude_id=exclude_id)
        if other is not None:
            problems["email"] = _("このメールアドレスはすでに登録されています（%(name)s）。",
                                  name=other.display_name)
    return problems


def find_by_email(email: str, exclude_id: int | None = None) -> Supporter | None:
    query = select(Supporter).where(Supporter.email_key == email.strip().lower(),
                                    Supporter.status.in_(LIVE_STATUSES))
    if exclude_id:
        query = query.where(Supporter.id != exclude_id)
    return db.session.scalars(query.limit(1)).first()


def find_by_name_and_phone(name: str, phone: str, exclude_id: int | None = None) -> Supporter | None:
    """A live supporter with the same name (ignoring spaces and width) and phone digits."""
    phone_digits = digits(phone)
    if not name or not phone_digits:
        return None
    folded = fold(name)
    candidates = select(SupporterSearchTerm.supporter_id).where(
        SupporterSearchTerm.term == phone_digits)
    query = select(Supporter).where(Supporter.id.in_(candidates),
                                    Supporter.status.in_(LIVE_STATUSES))
    if exclude_id:
        query = query.where(Supporter.id != exclude_id)
    for other in db.session.scalars(query):
        if digits(other.phone) == phone_digits and folded in (fold(other.name),
                                                              fold(other.business_name)):
            return other
    return None


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


# --- history -----------------------------------------------------------------------------

def _display(key: str, value):
    if value is None or value == "":
        return ""
    if key == "district_id":
        district = db.session.get(District, value)
        return district.name if district else str(value)
    if key == "business_category_id":
        category = db.session.get(BusinessCategory, value)
        return category.name if category else str(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def record_change(s: Supporter, action: str, changes: dict | None = None, *, actor) -> None:
    """Add a history entry: the action code, {field: [old, new]}, and who (see app.actors)."""
    staff_id, name, kind = actors.stamp(actor)
    db.session.add(SupporterChange(supporter_id=s.id, staff_id=staff_id, actor=name,
                                   actor_kind=kind, action=action, changes=changes or {}))


def history(s: Supporter) -> list[SupporterChange]:
    return list(db.session.scalars(
        select(SupporterChange).where(SupporterChange.supporter_id == s.id)
        .order_by(SupporterChange.at.desc(), SupporterChange.id.desc())
    ))


# --- create / change -------------------------------------------------------------------------

def _checked(data: dict, exclude_id: int | None = None) -> dict:
    data = normalise(data)
    raise_problems(validate(data, exclude_id=exclude_id))
    return data


def add_supporter(data: dict, action: str, *, actor) -> Supporter:
    """Add a supporter from checked data with its first history entry (the caller commits)."""
    supporter = Supporter(**{k: v for k, v in data.items()
                             if k in EDITABLE or k in ("consent_at", "consent_version")})
    if supporter.status == "active" and supporter.joined_on is None:
        supporter.joined_on = today_tokyo()
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
            changes[key] = [_display(key, old), _display(key, new)]
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


def _application_data(data: dict) -> dict:
    data = dict(data, status="applied", joined_via="application",
                consent_at=utcnow(), consent_version=current_app.config["HOTNET_PRIVACY_VERSION"])
    data.pop("notes", None)
    return normalise(data)


def application_problems(data: dict) -> dict[str, str]:
    """What is wrong with an application, per field (to show every problem at once).

    An applicant who is already registered is not turned away: staff see the duplicate.
    """
    return validate(_application_data(data), check_duplicates=False)


def apply(data: dict, submission_key: str | None = None, *, commit: bool = True) -> Supporter:
    """A public application: lands as "applied" with the privacy consent recorded. The same
    `submission_key` twice raises AlreadySubmitted instead of a second applicant."""
    data = _application_data(data)
    raise_problems(validate(data, check_duplicates=False))
    slot = submissions.claim(submission_key, "application")
    supporter = add_supporter(data, "applied", actor=None)
    submissions.record(slot, supporter.id)
    outbox.enqueue(supporter.email, _("ほっとネット推進員のお申込みを受け付けました"),
                   "application_received", supporter_id=supporter.id, supporter=supporter,
                   **mobile_context(supporter.email))
    if commit:
        db.session.commit()
    return supporter


def approve(s: Supporter, *, actor) -> Supporter:
    """Accept an application: the supporter becomes active and is told by e-mail."""
    if s.status != "applied":
        raise InvalidState(_("申込中の方だけ承認できます。"))
    s.status = "active"
    s.joined_on = s.joined_on or today_tokyo()
    record_change(s, "approved", {"status": ["applied", "active"]}, actor=actor)
    audit.record("supporter.approve", "supporter", s.id, actor=actor)
    outbox.enqueue(s.email, _("ほっとネット推進員に登録しました"), "application_approved",
                   supporter_id=s.id, supporter=s, **mobile_context(s.email))
    db.session.commit()
    return s


def decline(s: Supporter, *, actor) -> Supporter:
    """Decline an application: tell the applicant, then erase what they gave us."""
    if s.status != "applied":
        raise InvalidState(_("申込中の方だけ見送りにできます。"))
    # Not tied to the record (which is erased now); its text and address are erased from
    # the outbox as soon as the mail server has it.
    outbox.enqueue(s.email, _("ほっとネット推進員のお申込みについて"), "application_declined",
                   erase_after_send=True, supporter=s)
    _erase(s, "declined")
    record_change(s, "declined", actor=actor)
    audit.record("supporter.decline", "supporter", s.id, actor=actor)
    db.session.commit()
    return s


def withdraw(s: Supporter, *, actor) -> Supporter:
    """Withdraw a supporter and erase their personal data, keeping only anonymous counts."""
    if s.status in ERASED_STATUSES:
        raise InvalidState(_("すでに退会しています。"))
    _erase(s, "withdrawn")
    record_change(s, "withdrawn", actor=actor)
    audit.record("supporter.withdraw", "supporter", s.id, actor=actor)
    db.session.commit()
    return s


def _erase(s: Supporter, status: str) -> None:
    for key in _TEXT_FIELDS + ("notes",):
        setattr(s, key, "")
    s.email = None
    s.business_category_id = s.business_category_id if s.kind == "business" else None
    s.delivery = "none"
    s.status = status
    s.withdrawn_at = utcnow()
    db.session.execute(delete(LoginLink).where(LoginLink.supporter_id == s.id))
    # Every domain above erases its own copies (queued mail, newsletter deliveries …).
    supporter_erased.send(s.id)
    # Old values in the history are personal data too.
    for entry in db.session.scalars(select(SupporterChange).where(SupporterChange.supporter_id == s.id)):
        entry.changes = {}


def live_per_district() -> dict[int, int]:
    """How many live supporters each district has (the geography overview)."""
    return dict(db.session.execute(
        select(Supporter.district_id, func.count(Supporter.id))
        .where(Supporter.status.in_(LIVE_STATUSES)).group_by(Supporter.district_id)).all())


DISTRICT_COUNTS[_l("推進員（申込中・活動中・休止中）")] = live_per_district


# --- addresses that bounce ---------------------------------------------------------------------

MOBILE_CARRIER_DOMAINS = ("docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp",
                          "i.softbank.jp", "ymobile.ne.jp", "y-mobile.ne.jp", "rakumail.jp",
                          "disney.ne.jp", "uqmobile.jp")


def is_mobile_carrier(email: str | None) -> bool:
    """Whether the address is a Japanese mobile carrier's, whose spam filters refuse mail from
    unknown senders unless the person allows the sender's domain (ドメイン指定受信)."""
    domain = (email or "").rpartition("@")[2].strip().lower()
    return any(domain == d or domain.endswith("." + d) for d in MOBILE_CARRIER_DOMAINS)


def mobile_context(email: str | None) -> dict:
    """What a welcome mail needs to tell a mobile carrier's customer how to let our mail in."""
    return {"mobile": is_mobile_carrier(email), "sender_domain": sender_domain()}


def sender_domain() -> str:
    """The domain our mail comes from (what a mobile carrier's filter must allow)."""
    import re
    config = current_app.config
    sender = config.get("HOTNET_NEWSLETTER_FROM") or config["MAIL_DEFAULT_SENDER"]
    found = re.search(r"@([\w.\-]+)", sender)
    return found.group(1) if found else ""


def hold_email(s: Supporter, reason: str) -> bool:
    """Stop e-mailing an address that bounces: newsletters go by post (when there is an
    address to post to), the record says why, and the supporter is asked to confirm a new
    address at their next sign-in. The caller commits; False when already held."""
    if s.email_held_at is not None or not s.email:
        return False
    s.email_held_at = utcnow()
    s.email_hold_reason = reason[:300]
    old = s.delivery
    if s.delivery in ("email", "both"):
        s.delivery = "post" if (s.address and s.postal_code) else "none"
    changes = {"delivery": [old, s.delivery]} if old != s.delivery else {}
    changes["email"] = [s.email, s.email]
    record_change(s, "bounced", changes, actor=None)
    return True


def confirm_email(s: Supporter, email: str, delivery: str, *, actor) -> Supporter:
    """The supporter (or staff) says which address works now: the hold ends."""
    data = {"email": email, "delivery": delivery}
    update_supporter(s, data, fields=("email", "delivery"), actor=actor)
    s.email_held_at, s.email_hold_reason, s.soft_bounces = None, "", 0
    db.session.commit()
    return s


def held_addresses(scope: frozenset[int] | None = None) -> list[Supporter]:
    """Supporters whose address is held, newest first (the areas a staff member serves)."""
    return list(db.session.scalars(
        in_scope(select(Supporter).where(Supporter.email_held_at.is_not(None),
                                         Supporter.status.in_(LIVE_STATUSES)), scope)
        .order_by(Supporter.email_held_at.desc())))


# --- search ------------------------------------------------------------------------------

@dataclass
class RegistryFilters:
    q: str = ""
    area_id: int | None = None
    district_id: int | None = None
    kind: str = ""
    status: str = ""
    delivery: str = ""
    category_id: int | None = None
    station_id: int | None = None
    # The areas whose supporters the viewer may see (None: all); those with no district yet
    # are seen by every staff member, who place them.
    scope: frozenset[int] | None = None
    sort: str = "kana"        # one of SORTS
    descending: bool = False

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.__dict__.items()
                         if v and k not in ("scope", "sort", "descending"))

    def codes(self) -> dict:
        """The filters that are set, as codes (for the audit log)."""
        return {k: v for k, v in self.__dict__.items()
                if v and k not in ("scope", "sort", "descending")}

    def contradiction(self) -> str:
        """Why the place filters cannot match anyone together ("" when they can): a district
        outside the chosen area or station, or outside the areas the viewer serves."""
        district = db.session.get(District, self.district_id) if self.district_id else None
        if district is not None and self.scope is not None and district.area_id not in self.scope:
            return _("地区「%(district)s」はあなたの担当する圏域の外です。担当の圏域の地区を選んでください。",
                     district=district.label)
        area = db.session.get(Area, self.area_id) if self.area_id else None
        if area is not None and self.scope is not None and area.id not in self.scope:
            return _("%(area)sはあなたの担当する圏域の外です。", area=area.label)
        if not self.district_id or not (self.area_id or self.station_id):
            return ""
        if district is None:
            return ""
        if self.area_id and district.area_id != self.area_id:
            area = db.session.get(Area, self.area_id)
            return _("地区「%(district)s」は%(area)sではなく%(its)sにあります。地区か圏域を選び直してください。",
                     district=district.label, area=area.label if area else "",
                     its=district.area.label)
        if self.station_id and district.area.station_id != self.station_id:
            return _("地区「%(district)s」は、選んだステーションの担当ではありません。地区かステーションを選び直してください。",
                     district=district.label)
        return ""


# The registry list's sortable columns: the default is 五十音 (the reading).
SORTS = {
    "kana": (Supporter.sort_key,),
    "district": (District.position,),
    # 申込中 → 活動中 → 休止中 → 退会 → 見送り (the order of a supporter's life, not A–Z)
    "status": (case({code: n for n, code in enumerate(STATUSES)}, value=Supporter.status,
                    else_=len(STATUSES)),),
    "joined": (Supporter.joined_on,),
}


@dataclass
class Page:
    rows: list[Supporter]
    total: int
    page: int
    per_page: int
    area_totals: list[tuple[str, int]] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.per_page))


def _query_term(q: str) -> str:
    """The folded form of what was typed; phone-like input becomes bare digits."""
    stripped = q.strip()
    if stripped and all(ch.isdigit() or ch in "-‐－ー ()（）　" for ch in stripped):
        return digits(stripped)
    return fold(stripped)


def where_place_and_kind(query, *, area_id: int | None = None, district_id: int | None = None,
                         kind: str = "", category_id: int | None = None,
                         station_id: int | None = None, district_ids=None):
    """Narrow a supporter query by station, area, district(s), person/business and business
    category. Shared by the registry's filters and newsletter audiences.
    """
    if district_id:
        query = query.where(Supporter.district_id == district_id)
    if district_ids:
        query = query.where(Supporter.district_id.in_(list(district_ids)))
    if area_id:
        query = query.where(Supporter.district_id.in_(
            select(District.id).where(District.area_id == area_id)))
    if station_id:
        query = query.where(Supporter.district_id.in_(
            select(District.id).join(Area).where(Area.station_id == station_id)))
    if kind:
        query = query.where(Supporter.kind == kind)
    if category_id:
        query = query.where(Supporter.business_category_id == category_id)
    return query


def in_scope(query, scope: frozenset[int] | None):
    """Narrow a supporter query to the areas a staff member serves (None: no narrowing)."""
    if scope is None:
        return query
    return query.where(or_(Supporter.district_id.is_(None), Supporter.district_id.in_(
        select(District.id).where(District.area_id.in_(sorted(scope))))))


def area_of(s: Supporter) -> int | None:
    return s.district.area_id if s.district is not None else None


def where_matches(query, q: str):
    """Narrow a supporter query to those found by what was typed in a search box (a prefix
    range scan on the folded search terms)."""
    term = _query_term(q or "")
    if term:
        matches = select(SupporterSearchTerm.supporter_id).where(
            SupporterSearchTerm.term >= term, SupporterSearchTerm.term < term + "\U0010ffff")
        query = query.where(Supporter.id.in_(matches))
    return query


def _filtered(query, f: RegistryFilters, *, geography: bool = True):
    query = in_scope(query, f.scope)
    if f.q:
        query = where_matches(query, f.q)
    query = where_place_and_kind(
        query, area_id=f.area_id if geography else None,
        district_id=f.district_id if geography else None, kind=f.kind, category_id=f.category_id,
        station_id=f.station_id if geography else None)
    if f.status:
        query = query.where(Supporter.status == f.status)
    else:
        query = query.where(Supporter.status.in_(LIVE_STATUSES))
    if f.delivery:
        query = query.where(Supporter.delivery == f.delivery)
    return query


def count(f: RegistryFilters) -> int:
    return db.session.scalar(_filtered(select(func.count(Supporter.id)), f)) or 0


# What a row of the registry list shows; loading only these keeps big pages quick.
LIST_COLUMNS = (Supporter.id, Supporter.kind, Supporter.name, Supporter.kana,
                Supporter.business_name, Supporter.business_kana, Supporter.status,
                Supporter.delivery, Supporter.phone, Supporter.district_id, Supporter.joined_on)


def search(f: RegistryFilters, page: int = 1, per_page: int = 25,
           areas: list[Area] | None = None) -> Page:
    """One page of supporters in 五十音 order, with the total and the totals per area."""
    page = max(1, page)
    totals = area_totals(f, areas)
    # The per-area totals follow every filter: the total is their sum.
    total = sum(n for _name, n in totals)
    rows = list(db.session.scalars(
        _ordered(_filtered(select(Supporter), f), f)
        .options(load_only(*LIST_COLUMNS), joinedload(Supporter.district).load_only(District.name, District.name_en))
        .limit(per_page).offset((page - 1) * per_page)
    ))
    return Page(rows=rows, total=total, page=page, per_page=per_page, area_totals=totals)


def _ordered(query, f: RegistryFilters):
    """The chosen column's order, then 五十音 and id (stable pages)."""
    columns = SORTS.get(f.sort, SORTS["kana"])
    if f.sort == "district":
        query = query.outerjoin(District, District.id == Supporter.district_id)
    keys = [(c.desc() if f.descending else c.asc()).nulls_last() if f.sort == "joined"
            else (c.desc() if f.descending else c) for c in columns]
    return query.order_by(*keys, Supporter.sort_key, Supporter.id)


def area_totals(f: RegistryFilters, areas: list[Area] | None = None) -> list[tuple[str, int]]:
    """How many supporters match in each area (with every filter, so they add up to the
    total); areas with none are left out when a place filter is set."""
    counts = dict(db.session.execute(
        _filtered(select(District.area_id, func.count(Supporter.id))
                  .select_from(Supporter).outerjoin(District), f)
        .group_by(District.area_id)
    ).all())
    if areas is None:
        areas = list(db.session.scalars(select(Area).order_by(Area.position)))
    placed = bool(f.area_id or f.district_id or f.station_id)
    result = [(a.label, counts.get(a.id, 0)) for a in areas
              if (f.scope is None or a.id in f.scope) and (not placed or counts.get(a.id))]
    if counts.get(None):
        result.append((_("地区未設定"), counts[None]))
    return result


def iter_filtered(f: RegistryFilters):
    """Every matching supporter in the chosen order, streamed (for exports and printing)."""
    query = _ordered(_filtered(select(Supporter), f), f).options(joinedload(Supporter.district))
    return db.session.scalars(query.execution_options(yield_per=500))


def list_categories() -> list[BusinessCategory]:
    return list(db.session.scalars(select(BusinessCategory).order_by(BusinessCategory.position,
                                                                     BusinessCategory.id)))


def add_category(name: str, name_en: str = "", *, actor) -> BusinessCategory:
    name = clean(name)
    if not name:
        raise InvalidInput(_("業種名を入力してください。"), field="name")
    if db.session.scalar(select(BusinessCategory).where(BusinessCategory.name == name)):
        raise InvalidInput(_("同じ名前の業種があります。"), field="name")
    position = (db.session.scalar(select(func.max(BusinessCategory.position))) or 0) + 1
    code = f"c{position:03d}"
    while db.session.scalar(select(BusinessCategory).where(BusinessCategory.code == code)):
        position += 1
        code = f"c{position:03d}"
    category = BusinessCategory(code=code, name=name, name_en=clean(name_en), position=position)
    db.session.add(category)
    audit.record("category.create", "business_category", None, name, actor=actor)
    db.session.commit()
    return category


def rename_category(category: BusinessCategory, name: str, name_en: str = "", *, actor) -> None:
    name = clean(name)
    if not name:
        raise InvalidInput(_("業種名を入力してください。"), field="name")
    category.name, category.name_en = name, clean(name_en)
    audit.record("category.update", "business_category", category.id, name, actor=actor)
    db.session.commit()


DEFAULT_CATEGORIES = (
    ("real_estate", "不動産", "Real estate"),
    ("cleanup", "清掃・片付け", "Clean-up"),
    ("gardening", "造園・植木", "Gardening"),
    ("shop", "商店・飲食", "Shop"),
    ("care", "介護・福祉サービス", "Care provider"),
    ("other", "その他", "Other"),
)


def ensure_business_categories() -> None:
    """Create the shipped business categories that are missing (idempotent)."""
    for position, (code, name, name_en) in enumerate(DEFAULT_CATEGORIES):
        if db.session.scalar(select(BusinessCategory).where(BusinessCategory.code == code)) is None:
            db.session.add(BusinessCategory(code=code, name=name, name_en=name_en,
                                            position=position))
    db.session.commit()
