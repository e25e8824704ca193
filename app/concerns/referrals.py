"""Referrals (つなぎ): a concern passed on to a partner agency, with the consent it was made
under, followed to its end. Internal: the reporter reads only the safe status words, and staff
outside the concern's area see nothing of it.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.audit import services as audit
from app.concerns.models import (
    OPEN_REFERRAL_STATUSES,
    REFERRAL_CONSENTS,
    REFERRAL_METHODS,
    REFERRAL_STATUSES,
    Concern,
    Referral,
)
from app.concerns.rules import recent_enough_to_be_resent
from app.concerns.timeline import add_event
from app.errors import InvalidInput, InvalidState, NotFound, raise_problems
from app.extensions import db
from app.formatting import today_tokyo
from app.i18n import gettext as _
from app.partners import services as partners

TEXT_LIMIT = 2000
# Which steps may follow which; a closed referral can be reopened (the agency calls back).
NEXT = {"requested": ("accepted", "in_progress", "done", "returned"),
        "accepted": ("in_progress", "done", "returned"),
        "in_progress": ("done", "returned"),
        "done": ("in_progress",), "returned": ("requested",)}


class OpenReferrals(InvalidState):
    """Closing a concern while referrals are still open: ask first."""

    def __init__(self, referrals: list[Referral]):
        super().__init__(_("まだ終わっていないつなぎが %(n)d 件あります。", n=len(referrals)))
        self.referrals = referrals


def referrals_of(concern: Concern) -> list[Referral]:
    return list(db.session.scalars(
        select(Referral).options(joinedload(Referral.agency))
        .where(Referral.concern_id == concern.id)
        .order_by(Referral.referred_on, Referral.id)))


def open_referrals(concern: Concern) -> list[Referral]:
    return [r for r in referrals_of(concern) if r.is_open]


def get_referral(concern: Concern, referral_id: int) -> Referral:
    referral = db.session.get(Referral, referral_id)
    if referral is None or referral.concern_id != concern.id:
        raise NotFound(referral_id)
    return referral


def suggested_agencies(concern: Concern):
    """Agencies for this concern: its district's first, then those taking its category."""
    return partners.suggest(concern.district, concern.category.code if concern.category else "")


def referral_problems(data: dict) -> dict[str, str]:
    found = {}
    if not data.get("agency_id"):
        found["agency_id"] = _("つなぎ先を選んでください。")
    if data.get("method") not in REFERRAL_METHODS:
        found["method"] = _("つないだ方法を選んでください。")
    if data.get("consent") not in REFERRAL_CONSENTS:
        found["consent"] = _("本人の同意など、情報を伝えた根拠を選んでください。")
    referred_on = data.get("referred_on")
    if not isinstance(referred_on, date):
        found["referred_on"] = _("つないだ日を入力してください。")
    elif referred_on > today_tokyo():
        found["referred_on"] = _("つないだ日に先の日付は入れられません。")
    follow_up = data.get("follow_up_on")
    if follow_up is not None and isinstance(referred_on, date) and follow_up < referred_on:
        found["follow_up_on"] = _("確認する日は、つないだ日より後にしてください。")
    if len(data.get("passed_on") or "") > TEXT_LIMIT:
        found["passed_on"] = _("%(max)d文字以内で入力してください。", max=TEXT_LIMIT)
    return found


def record_referral(concern: Concern, data: dict, *, actor) -> Referral:
    """Record that the concern was passed on; the consent basis is required."""
    referral = add_referral(concern, data, actor=actor)
    db.session.commit()
    return referral


def _sent_already(concern: Concern, agency_id: int, data: dict, actor) -> Referral | None:
    """The referral just recorded, when this is it sent again (rules.RESENT_WITHIN): the same
    agency, day and words, by the same person."""
    staff_id = getattr(actor, "id", None) if getattr(actor, "is_staff", False) else None
    last = db.session.scalar(select(Referral).where(Referral.concern_id == concern.id)
                             .order_by(Referral.created_at.desc(), Referral.id.desc()).limit(1))
    if (last is not None and last.agency_id == agency_id and last.staff_id == staff_id
            and last.referred_on == data["referred_on"]
            and last.passed_on == (data.get("passed_on") or "").strip()
            and recent_enough_to_be_resent(last.created_at)):
        return last
    return None


def add_referral(concern: Concern, data: dict, *, actor) -> Referral:
    """`record_referral` in the caller's transaction (it commits). The same referral sent
    again (_sent_already) is the first one."""
    if concern.erased_at is not None:
        raise InvalidState(_("保存期間を過ぎて個人情報を消去した記録は変更できません。"))
    raise_problems(referral_problems(data))
    try:
        agency = partners.get_agency(data["agency_id"])
    except NotFound:
        raise InvalidInput(_("つなぎ先を選んでください。"), field="agency_id") from None
    if not agency.active:
        raise InvalidInput(_("このつなぎ先は無効になっています。"), field="agency_id")
    if (first := _sent_already(concern, agency.id, data, actor)) is not None:
        return first
    referral = Referral(
        concern_id=concern.id, agency_id=agency.id, referred_on=data["referred_on"],
        staff_id=getattr(actor, "id", None) if getattr(actor, "is_staff", False) else None,
        staff_name=actor.name if getattr(actor, "is_staff", False) else "",
        method=data["method"], consent=data["consent"],
        passed_on=(data.get("passed_on") or "").strip(), follow_up_on=data.get("follow_up_on"),
        status="requested")
    db.session.add(referral)
    db.session.flush()
    add_event(concern, "referral", actor, status_to="requested", body=agency.name)
    if concern.status == "connected":  # つなぎ先 on the record: every agency it went to
        names = dict.fromkeys(r.agency.name for r in referrals_of(concern))
        concern.connected_to = "、".join(names)[:200]
    audit.record("referral.create", "referral", referral.id,
                 params={"reference": concern.reference, "name": agency.name}, actor=actor)
    return referral


def update_referral(referral: Referral, status: str, *, actor, on: date | None = None,
                    follow_up_on: date | None = None, note: str = "") -> Referral:
    """Record how far the agency has come (dated, on the concern's timeline)."""
    if status not in REFERRAL_STATUSES:
        raise InvalidInput(_("つなぎの経過を選んでください。"), field="status")
    if status != referral.status and status not in NEXT[referral.status]:
        raise InvalidState(_("この経過には進められません。"))
    on = on or today_tokyo()
    if on < referral.referred_on or on > today_tokyo():
        raise InvalidInput(_("日付は、つないだ日から今日までの間にしてください。"), field="on")
    note = (note or "").strip()
    if len(note) > TEXT_LIMIT:
        raise InvalidInput(_("%(max)d文字以内で入力してください。", max=TEXT_LIMIT), field="note")
    old = referral.status
    referral.status = status
    if status == "accepted" and referral.accepted_on is None:
        referral.accepted_on = on
    referral.closed_on = on if status in ("done", "returned") else None
    referral.follow_up_on = follow_up_on if status in OPEN_REFERRAL_STATUSES else None
    add_event(referral.concern, "referral", actor, status_from=old, status_to=status,
              body=f"{referral.agency.name}（{on.isoformat()}）" + (f"\n{note}" if note else ""))
    audit.record("referral.update", "referral", referral.id,
                 params={"reference": referral.concern.reference, "name": referral.agency.name},
                 actor=actor)
    db.session.commit()
    return referral


def follow_ups(scope: frozenset[int] | None, today: date | None = None,
               due_only: bool = False) -> list[Referral]:
    """Open referrals in the areas a staff member serves (scope; None: all), those whose
    follow-up date has come first."""
    today = today or today_tokyo()
    query = (select(Referral).join(Concern).options(joinedload(Referral.agency),
                                                      joinedload(Referral.concern))
             .where(Referral.status.in_(OPEN_REFERRAL_STATUSES), Concern.erased_at.is_(None)))
    if scope is not None:
        query = query.where(Concern.area_id.in_(sorted(scope)) | Concern.area_id.is_(None))
    if due_only:
        query = query.where(Referral.follow_up_on <= today)
    found = list(db.session.scalars(query))
    return sorted(found, key=lambda r: (r.follow_up_on is None or r.follow_up_on > today,
                                        r.follow_up_on or date.max, r.referred_on))


# What the referral sheet (連絡票) may carry, by consent basis: with consent or in a support
# meeting, what was noticed and where; without consent only to protect life or body (the
# same, marked so); anonymously, nothing that points to a person or a place.
_FULL_SHEET = ("category", "district", "place", "address", "body", "passed_on")
SHEET_FIELDS = {"consent": _FULL_SHEET, "vital": _FULL_SHEET, "meeting": _FULL_SHEET,
                "anonymous": ("category", "area", "passed_on")}


def sheet(referral: Referral, *, actor) -> dict:
    """The referral sheet's content: only what the consent basis allows (audited: it is
    printed and faxed)."""
    concern = referral.concern
    fields = SHEET_FIELDS[referral.consent]
    values = {
        "category": concern.category.name if concern.category else "",
        "district": concern.district.name if concern.district else "",
        "area": concern.area.name if concern.area else "",
        "place": concern.place, "address": concern.address, "body": concern.body,
        "passed_on": referral.passed_on,
    }
    audit.record("referral.sheet", "referral", referral.id,
                 params={"reference": concern.reference, "name": referral.agency.name},
                 actor=actor)
    db.session.commit()
    return {key: values[key] for key in fields}


def record_figures_export(referrals, *, actor) -> None:
    """The referral figures were downloaded (counts only; audited like every export)."""
    audit.record("referral.figures", "referral", None, params={"count": referrals.high},
                 actor=actor)
    db.session.commit()
