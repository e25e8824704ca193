"""Supporters sign in with a one-time link mailed to them (no password to forget)."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from app.accounts.services import ACCOUNT_KINDS
from app.audit import services as audit
from app.dbtypes import utcnow
from app.errors import LinkInvalid
from app.extensions import db
from app.i18n import gettext as _
from app.outbox import services as outbox
from app.supporters.models import LoginLink, Supporter
from app.text import email_key
from app.urls import external_url

ACCOUNT_KINDS["supporter"] = Supporter  # Flask-Login loads "supporter:N:G" sessions from here

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_supporter_by_email(email: str) -> Supporter | None:
    key = email_key(email)
    if not key:
        return None
    return db.session.scalar(
        select(Supporter)
        .where(Supporter.email_key == key, Supporter.status.in_(("applied", "active", "paused")))
        .order_by(Supporter.id)
        .limit(1)
    )


def request_login_link(email: str) -> bool:
    """Queue a one-time sign-in link for the supporter with this address.

    Returns whether a link was queued; the page says the same either way, and both ways do
    the same work in the request (a look-up and one committed write, no mail server), so
    that neither the page nor its timing tells who is registered. The sender delivers the
    link within seconds; its text is erased from the outbox once sent.
    """
    supporter = find_supporter_by_email(email)
    audit.record("supporter.link_request", "supporter", None, "",
                 actor=supporter)
    if supporter is None:
        db.session.commit()
        return False
    token = secrets.token_urlsafe(32)
    minutes = current_app.config["HOTNET_LOGIN_LINK_MINUTES"]
    db.session.add(LoginLink(supporter_id=supporter.id, token_hash=_hash(token),
                             expires_at=utcnow() + timedelta(minutes=minutes)))
    outbox.enqueue(supporter.email, _("ほっとネット ログイン用リンク"), "login_link",
                   supporter_id=supporter.id, erase_after_send=True, supporter=supporter,
                   link=external_url("supporters.link_signin", token=token), minutes=minutes)
    db.session.commit()
    return True


def check_login_link(token: str) -> LoginLink:
    """The valid link for this token; raises LinkInvalid("used"|"expired"|"unknown")."""
    link = db.session.scalar(select(LoginLink).where(LoginLink.token_hash == _hash(token)))
    if link is None:
        raise LinkInvalid("unknown")
    if link.used_at is not None:
        raise LinkInvalid("used")
    if link.superseded_at is not None:
        raise LinkInvalid("superseded")
    if link.expires_at <= utcnow():
        raise LinkInvalid("expired")
    return link


def consume_login_link(token: str) -> Supporter:
    """Mark the link used (exactly once, even under concurrent clicks) and return its owner."""
    link = check_login_link(token)
    now = utcnow()
    claimed = db.session.execute(
        LoginLink.__table__.update()
        .where(LoginLink.id == link.id, LoginLink.used_at.is_(None),
               LoginLink.superseded_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        raise LinkInvalid("used")
    supporter = db.session.get(Supporter, link.supporter_id)
    if supporter is None or not supporter.is_active:
        db.session.rollback()
        raise LinkInvalid("unknown")
    # Using one link ends every other link mailed to this supporter.
    db.session.execute(update(LoginLink).where(
        LoginLink.supporter_id == supporter.id, LoginLink.id != link.id,
        LoginLink.used_at.is_(None), LoginLink.superseded_at.is_(None)).values(superseded_at=now))
    db.session.commit()
    return supporter


def purge_expired_links() -> int:
    """Delete links that expired more than a day ago; run by the scheduler."""
    cutoff = utcnow() - timedelta(days=1)
    result = db.session.execute(delete(LoginLink).where(LoginLink.expires_at < cutoff))
    db.session.commit()
    return result.rowcount or 0
