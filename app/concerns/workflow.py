"""The status workflow and assignment (rules in app/concerns/rules.py)."""
from __future__ import annotations

from app.accounts.models import StaffUser
from app.audit import services as audit
from app.concerns import referrals, rules
from app.concerns.intake import TEXT_LIMIT
from app.concerns.linking import link_pair
from app.concerns.models import (
    STATUSES,
    Concern,
)
from app.concerns.records import find_by_reference
from app.concerns.timeline import add_event
from app.dbtypes import utcnow
from app.errors import InvalidInput, InvalidState
from app.extensions import db
from app.i18n import gettext as _
from app.labels import CONCERN_STATUS
from app.outbox import services as outbox
from app.urls import external_url

# --- the workflow ---------------------------------------------------------------------------

def require_not_erased(concern: Concern) -> None:
    if concern.erased_at is not None:
        raise InvalidState(_("保存期間を過ぎて個人情報を消去した記録は変更できません。"))


def change_status(concern: Concern, status: str, *, actor, duplicate_of: str = "",
                  note: str = "", confirmed: bool = False) -> None:
    """Move a concern along its workflow; who and when go into the timeline.

    つなぎ済 needs at least one referral (its agencies become `connected_to`); closing while
    a referral is still open raises OpenReferrals unless `confirmed` (the page asks first)."""
    _move(concern, status, actor=actor, duplicate_of=duplicate_of, note=note,
          confirmed=confirmed)
    db.session.commit()


def can_connect(concern: Concern) -> bool:
    """Whether the concern's status can go to つなぎ済 next (the referral form offers it)."""
    return "connected" in rules.TRANSITIONS[concern.status]


def refer(concern: Concern, data: dict, *, actor, connect: bool = False):
    """Record a referral (つなぎ) and, with `connect`, move the concern to つなぎ済 when its
    status can go there — in one transaction."""
    referral = referrals.add_referral(concern, data, actor=actor)
    if connect and can_connect(concern):
        _move(concern, "connected", actor=actor)
    db.session.commit()
    return referral


def _move(concern: Concern, status: str, *, actor, duplicate_of: str = "", note: str = "",
          confirmed: bool = False) -> None:
    """`change_status` in the caller's transaction (it commits)."""
    require_not_erased(concern)
    if status not in STATUSES:
        raise InvalidInput(_("状態を選んでください。"), field="status")
    if status not in rules.TRANSITIONS[concern.status]:
        raise InvalidState(_("「%(old)s」から「%(new)s」には変えられません。",
                             old=CONCERN_STATUS[concern.status], new=CONCERN_STATUS[status]))
    note = (note or "").strip()
    if len(note) > TEXT_LIMIT:
        raise InvalidInput(_("%(max)d文字以内で入力してください。", max=TEXT_LIMIT), field="note")
    original = None
    connected_to = ""
    if status == "connected":
        made = referrals.referrals_of(concern)
        if not made:
            raise InvalidInput(_("つなぎ済にする前に、下の「つなぎ」でつなぎ先と本人の同意などを記録してください。"),
                               field="status")
        connected_to = "、".join(dict.fromkeys(r.agency.name for r in made))[:200]
    if status in rules.CLOSED_STATUSES and not confirmed:
        still_open = referrals.open_referrals(concern)
        if still_open:
            raise referrals.OpenReferrals(still_open)
    if status == "duplicate":
        if not (duplicate_of or "").strip():
            raise InvalidInput(_("「重複」にするときは、元の記録の受付番号を入力してください（例: HN-2026-000123）。"),
                               field="duplicate_of")
        original = find_by_reference(duplicate_of)
        if original is None:
            raise InvalidInput(_("元の受付番号（例: HN-2026-000123）が見つかりません。"),
                               field="duplicate_of")
        while original.duplicate_of is not None and original.status == "duplicate":
            original = original.duplicate_of
        if original.id == concern.id:
            raise InvalidInput(_("同じ記録を重複元にはできません。"), field="duplicate_of")

    old = concern.status
    concern.status = status
    now = utcnow()
    if old == "received" and concern.acknowledged_at is None:
        concern.acknowledged_at = now
    concern.closed_at = now if status in rules.CLOSED_STATUSES else None
    if status == "connected":
        concern.connected_to = connected_to
    if status == "duplicate":
        concern.duplicate_of_id = original.id
        link_pair(concern, original)
    elif old == "duplicate":
        concern.duplicate_of_id = None
    detail = {"connected": connected_to,
              "duplicate": original.reference if original is not None else ""}.get(status, "")
    add_event(concern, "status", actor, status_from=old, status_to=status, body=detail)
    if note:
        add_event(concern, "note", actor, body=note)
    audit.record("concern.status", "concern", concern.id, params={"from": old, "to": status},
                 actor=actor)


def assign(concern: Concern, staff_id: int | None, *, actor) -> None:
    """Assign the concern to a staff member (None: back to unassigned)."""
    require_not_erased(concern)
    staff = None
    if staff_id:
        staff = db.session.get(StaffUser, staff_id)
        if staff is None or not staff.active:
            raise InvalidInput(_("担当者を選び直してください。"), field="assignee_id")
    if concern.assignee_id == (staff.id if staff else None):
        return
    concern.assignee_id = staff.id if staff else None
    add_event(concern, "assigned", actor, body=staff.name if staff else "")  # "": no one
    audit.record("concern.assign", "concern", concern.id,
                 params={"reference": concern.reference, "name": staff.name if staff else "-"},
                 actor=actor)
    if staff is not None and (actor is None or getattr(actor, "id", None) != staff.id
                              or not getattr(actor, "is_staff", False)):
        # Told at once (the link only, no details), unless they took it themselves.
        outbox.enqueue(staff.email,
                       _("【ほっとネット】気になることの担当になりました（%(ref)s）", ref=concern.reference),
                       "concern_assigned", staff_id=staff.id, staff=staff, concern=concern,
                       url=external_url("concerns.staff_detail", concern_id=concern.id))
    db.session.commit()
