"""Staff accounts, passwords and one-time sign-in links for supporters."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from functools import wraps

from flask import abort, current_app
from app.i18n import gettext as _
from flask_login import current_user
from sqlalchemy import delete, func, select

from app.accounts.models import ROLES, LoginLink, StaffUser
from app.audit import services as audit
from app.dbtypes import utcnow
from app.errors import InvalidInput, LinkInvalid
from app.extensions import db
from app.geography.models import Area
from app.mailer import send_mail
from app.supporters.models import Supporter
from app.urls import external_url

MIN_PASSWORD_LENGTH = 10


def load_user(user_id: str):
    """Flask-Login loader: ids are "staff:N" or "supporter:N"."""
    kind, _, raw_id = user_id.partition(":")
    if not raw_id.isdigit():
        return None
    if kind == "staff":
        user = db.session.get(StaffUser, int(raw_id))
    elif kind == "supporter":
        user = db.session.get(Supporter, int(raw_id))
    else:
        return None
    return user if user is not None and user.is_active else None


# --- role checks -------------------------------------------------------------------

def _require(check):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if not check(current_user):
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorator


staff_required = _require(lambda user: user.is_staff)
admin_required = _require(lambda user: user.is_staff and user.is_admin)
supporter_required = _require(lambda user: user.is_supporter)


# --- staff ---------------------------------------------------------------------------

def authenticate_staff(email: str, password: str) -> StaffUser | None:
    """The active staff user with these credentials, or None."""
    user = db.session.scalar(
        select(StaffUser).where(func.lower(StaffUser.email) == email.strip().lower())
    )
    if user is None or not user.active or not user.check_password(password):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(_("パスワードは%(n)d文字以上にしてください。", n=MIN_PASSWORD_LENGTH),
                           field="password")


def create_staff(email: str, name: str, password: str, role: str, kana: str = "",
                 station_id: int | None = None, area_ids: list[int] | None = None) -> StaffUser:
    """Create a staff account; raises InvalidInput for a taken e-mail or weak password."""
    email = email.strip().lower()
    if role not in ROLES:
        raise InvalidInput(_("役割が正しくありません。"), field="role")
    _check_email_free(email)
    check_password_rules(password)
    user = StaffUser(email=email, name=name.strip(), kana=kana.strip(), role=role,
                     station_id=station_id)
    user.set_password(password)
    user.areas = _areas(area_ids)
    db.session.add(user)
    audit.record("staff.create", "staff_user", None, f"{email} ({role})")
    db.session.commit()
    return user


def _check_email_free(email: str, user_id: int | None = None) -> None:
    other = db.session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email))
    if other is not None and other.id != user_id:
        raise InvalidInput(_("このメールアドレスの職員はすでに登録されています。"), field="email")


def update_staff(user: StaffUser, *, email: str, name: str, kana: str, role: str,
                 station_id: int | None, area_ids: list[int], active: bool,
                 password: str = "") -> StaffUser:
    if role not in ROLES:
        raise InvalidInput(_("役割が正しくありません。"), field="role")
    email = email.strip().lower()
    _check_email_free(email, user.id)
    if password:
        check_password_rules(password)
        user.set_password(password)
    user.email = email
    user.name, user.kana, user.role = name.strip(), kana.strip(), role
    user.station_id, user.active = station_id, active
    user.areas = _areas(area_ids)
    audit.record("staff.update", "staff_user", user.id, user.email)
    db.session.commit()
    return user


def _areas(area_ids: list[int] | None) -> list[Area]:
    if not area_ids:
        return []
    return list(db.session.scalars(select(Area).where(Area.id.in_(area_ids))))


def list_staff() -> list[StaffUser]:
    return list(db.session.scalars(select(StaffUser).order_by(StaffUser.role, StaffUser.kana,
                                                             StaffUser.id)))


# --- one-time links for supporters ------------------------------------------------------

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_supporter_by_email(email: str) -> Supporter | None:
    key = email.strip().lower()
    if not key:
        return None
    return db.session.scalar(
        select(Supporter)
        .where(Supporter.email_key == key, Supporter.status.in_(("applied", "active", "paused")))
        .order_by(Supporter.id)
        .limit(1)
    )


def request_login_link(email: str) -> bool:
    """E-mail a one-time sign-in link to the supporter with this address.

    Returns whether a link was sent; the page says the same either way, so that nobody
    can learn who is registered.
    """
    supporter = find_supporter_by_email(email)
    if supporter is None:
        return False
    token = secrets.token_urlsafe(32)
    minutes = current_app.config["HOTNET_LOGIN_LINK_MINUTES"]
    db.session.add(LoginLink(supporter_id=supporter.id, token_hash=_hash(token),
                             expires_at=utcnow() + timedelta(minutes=minutes)))
    db.session.commit()
    link = external_url("accounts.link_signin", token=token)
    send_mail(supporter.email, _("ほっとネット ログイン用リンク"), "login_link",
              supporter=supporter, link=link, minutes=minutes)
    return True


def check_login_link(token: str) -> LoginLink:
    """The valid link for this token; raises LinkInvalid("used"|"expired"|"unknown")."""
    link = db.session.scalar(select(LoginLink).where(LoginLink.token_hash == _hash(token)))
    if link is None:
        raise LinkInvalid("unknown")
    if link.used_at is not None:
        raise LinkInvalid("used")
    if link.expires_at <= utcnow():
        raise LinkInvalid("expired")
    return link


def consume_login_link(token: str) -> Supporter:
    """Mark the link used (exactly once, even under concurrent clicks) and return its owner."""
    link = check_login_link(token)
    now = utcnow()
    claimed = db.session.execute(
        LoginLink.__table__.update()
        .where(LoginLink.id == link.id, LoginLink.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        raise LinkInvalid("used")
    supporter = db.session.get(Supporter, link.supporter_id)
    if supporter is None or not supporter.is_active:
        db.session.rollback()
        raise LinkInvalid("unknown")
    db.session.commit()
    return supporter


def purge_expired_links() -> int:
    """Delete links that expired more than a day ago; run by the scheduler."""
    cutoff = utcnow() - timedelta(days=1)
    result = db.session.execute(delete(LoginLink).where(LoginLink.expires_at < cutoff))
    db.session.commit()
    return result.rowcount or 0
