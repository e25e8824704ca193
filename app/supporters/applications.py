"""Applications from the public: taken with consent, approved or declined by staff."""
from __future__ import annotations

from flask import current_app

from app import submissions
from app.audit import services as audit
from app.dbtypes import utcnow
from app.errors import InvalidState, raise_problems
from app.extensions import db
from app.formatting import today_tokyo
from app.i18n import gettext as _
from app.outbox import services as outbox
from app.supporters.addresses import mobile_context
from app.supporters.erasure import erase_personal_data
from app.supporters.history import record_change
from app.supporters.models import (
    Supporter,
)
from app.supporters.records import add_supporter, normalise, validate


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
    erase_personal_data(s, "declined")
    record_change(s, "declined", actor=actor)
    audit.record("supporter.decline", "supporter", s.id, actor=actor)
    db.session.commit()
    return s
