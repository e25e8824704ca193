"""Withdrawal: personal data erased here and, by the supporter_erased signal, in every domain above."""
from __future__ import annotations

from sqlalchemy import delete, select

from app.audit import services as audit
from app.dbtypes import utcnow
from app.errors import InvalidState
from app.extensions import db
from app.i18n import gettext as _
from app.signals import supporter_erased
from app.supporters.history import record_change
from app.supporters.models import (
    LoginLink,
    Supporter,
    SupporterChange,
)
from app.supporters.records import ERASED_STATUSES, TEXT_FIELDS


def withdraw(s: Supporter, *, actor) -> Supporter:
    """Withdraw a supporter and erase their personal data, keeping only anonymous counts."""
    if s.status in ERASED_STATUSES:
        raise InvalidState(_("すでに退会しています。"))
    erase_personal_data(s, "withdrawn")
    record_change(s, "withdrawn", actor=actor)
    audit.record("supporter.withdraw", "supporter", s.id, actor=actor)
    db.session.commit()
    return s


def erase_personal_data(s: Supporter, status: str) -> None:
    for key in TEXT_FIELDS + ("notes",):
        setattr(s, key, "")
    s.email = None
    s.can_help, s.help_times = [], ""
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
