"""Addresses that bounce: held, sent by post instead, confirmed again by the person."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.dbtypes import utcnow
from app.extensions import db
from app.supporters.history import record_change
from app.supporters.models import (
    Supporter,
)
from app.supporters.records import LIVE_STATUSES, update_supporter
from app.supporters.search import in_scope

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
