"""Staff accounts, passwords and one-time sign-in links for supporters."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, union, update
from werkzeug.security import check_password_hash, generate_password_hash

from app.accounts.models import ROLES, StaffCover, StaffUser, staff_area
from app.audit import services as audit
from app.dbtypes import utcnow
from app.errors import InvalidInput, NotAllowed, NotFound, raise_problems
from app.extensions import db
from app.formatting import today_tokyo
from app.geography.models import Area
from app.i18n import gettext as _
from app.text import email_key

MIN_PASSWORD_LENGTH = 10


MAX_ID = 2**31 - 1
# Kinds of account that can sign in: staff here; supporters register theirs (a layer above).
ACCOUNT_KINDS = {"staff": StaffUser}


def load_user(user_id: str):
    """Flask-Login loader: ids are "staff:N:G" or "supporter:N:G", G being the account's
    session generation when it signed in; a session from an older generation has ended."""
    kind, raw_id, generation = (user_id.split(":") + ["", ""])[:3]
    if not (raw_id.isdigit() and generation.isdigit()) or int(raw_id) > MAX_ID:
        return None
    model = ACCOUNT_KINDS.get(kind)
    if model is None:
        return None
    user = db.session.get(model, int(raw_id))
    if user is None or not user.is_active or (user.session_generation or 0) != int(generation):
        return None
    return user


def end_sessions(user) -> None:
    """End every session the account has open (each device, each copied cookie); the
    caller commits. Used on sign-out and when a password, role, area or status changes."""
    model = type(user)
    db.session.execute(update(model).where(model.id == user.id).values(
        session_generation=model.session_generation + 1))
    db.session.refresh(user, ["session_generation"])


# --- staff ---------------------------------------------------------------------------

_DUMMY_HASHES: dict[str, str] = {}


def _dummy_hash() -> str:
    """A hash made the same way as real ones, checked when no account matches, so that a
    wrong address takes as long as a wrong password (timing tells nobody who has an account)."""
    method = current_app.config.get("HOTNET_PASSWORD_METHOD", "scrypt")
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = generate_password_hash(secrets.token_hex(16), method=method)
    return _DUMMY_HASHES[method]


def authenticate_staff(email: str, password: str) -> StaffUser | None:
    """The active staff user with these credentials, or None."""
    user = db.session.scalar(
        select(StaffUser).where(func.lower(StaffUser.email) == email_key(email))
    )
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not user.check_password(password) or not user.active:
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(_("パスワードは%(n)d文字以上にしてください。", n=MIN_PASSWORD_LENGTH),
                           field="password")


def create_staff(email: str, name: str, password: str, role: str, kana: str = "",
                 station_id: int | None = None, area_ids: list[int] | None = None,
                 all_areas: bool = False, *, actor) -> StaffUser:
    """Create a staff account (`actor`: the admin, or None from a command); raises InvalidInput for a taken e-mail or weak password."""
    email = email_key(email) or ""
    if role not in ROLES:
        raise InvalidInput(_("役割が正しくありません。"), field="role")
    _check_email_free(email)
    check_password_rules(password)
    user = StaffUser(email=email, name=name.strip(), kana=kana.strip(), role=role,
                     station_id=station_id, all_areas=all_areas)
    user.set_password(password)
    user.areas = _areas(area_ids)
    db.session.add(user)
    audit.record("staff.create", "staff_user", None, params={"name": email, "role": role},
                 actor=actor)
    db.session.commit()
    return user


def _check_email_free(email: str, user_id: int | None = None) -> None:
    other = db.session.scalar(select(StaffUser).where(func.lower(StaffUser.email) == email))
    if other is not None and other.id != user_id:
        raise InvalidInput(_("このメールアドレスの職員はすでに登録されています。"), field="email")


def update_staff(user: StaffUser, *, email: str, name: str, kana: str, role: str,
                 station_id: int | None, area_ids: list[int], active: bool,
                 password: str = "", all_areas: bool = False, actor) -> StaffUser:
    if role not in ROLES:
        raise InvalidInput(_("役割が正しくありません。"), field="role")
    email = email_key(email) or ""
    _check_email_free(email, user.id)
    new_areas = _areas(area_ids)
    ends_sessions = bool(password) or role != user.role or active != user.active or \
        {a.id for a in new_areas} != {a.id for a in user.areas} or \
        bool(all_areas) != bool(user.all_areas)
    if password:
        check_password_rules(password)
        user.set_password(password)
    user.email = email
    user.name, user.kana, user.role = name.strip(), kana.strip(), role
    user.station_id, user.active = station_id, active
    user.areas = new_areas
    user.all_areas = bool(all_areas)
    audit.record("staff.update", "staff_user", user.id, user.email, actor=actor)
    if ends_sessions:
        db.session.flush()
        end_sessions(user)
    db.session.commit()
    return user


# --- which areas' personal data a staff member may see (need to know) ------------------------

def area_scope(user) -> frozenset[int] | None:
    """The ids of the areas whose personal data this staff member may see, or None for every
    area (admins, and accounts set to "all areas"). Their own areas, plus any temporary
    cover an admin gave that has not run out. Computed once per user object."""
    if user is None or not getattr(user, "is_staff", False):
        return frozenset()
    if user.is_admin or user.all_areas:
        return None
    cached = getattr(user, "_area_scope", None)
    if cached is not None:
        return cached
    # One statement: the account's own areas and its covers (not the Area rows themselves).
    scope = frozenset(db.session.scalars(union(
        select(staff_area.c.area_id).where(staff_area.c.staff_id == user.id),
        select(StaffCover.area_id).where(StaffCover.staff_id == user.id,
                                         StaffCover.until >= today_tokyo()))))
    user._area_scope = scope
    return scope


def may_see_area(user, area_id: int | None) -> bool:
    """Whether the staff member may see personal data of a record in this area. A record
    with no area yet (no district given) is open to every staff member, who route it."""
    scope = area_scope(user)
    return scope is None or area_id is None or area_id in scope


@dataclass(frozen=True)
class Viewer:
    """Who is looking, reduced to what the rules need: the account id and the areas whose
    personal data it may see (None: all). Plain values, safe to use in a streamed response
    after the database session has let go of the account."""

    id: int
    scope: frozenset[int] | None

    @classmethod
    def of(cls, user) -> "Viewer":
        return cls(user.id, area_scope(user))

    def sees(self, area_id: int | None) -> bool:
        return self.scope is None or area_id is None or area_id in self.scope

    def require(self, area_id: int | None) -> None:
        if not self.sees(area_id):
            raise NotAllowed(area_id)


def active_covers(user: StaffUser) -> list[StaffCover]:
    return list(db.session.scalars(
        select(StaffCover).where(StaffCover.staff_id == user.id,
                                 StaffCover.until >= today_tokyo())
        .order_by(StaffCover.until, StaffCover.id)))


def grant_cover(actor: StaffUser, user: StaffUser, area_id: int | None, until) -> StaffCover:
    """Let a staff member cover an area until a day (holidays, sick leave)."""
    problems = {}
    area = db.session.get(Area, area_id) if area_id else None
    if area is None:
        problems["area_id"] = _("応援する圏域を選んでください。")
    if until is None:
        problems["until"] = _("いつまで応援するか、日付を入力してください。")
    elif until < today_tokyo():
        problems["until"] = _("期限は今日以降の日にしてください。")
    elif until > today_tokyo() + timedelta(days=366):
        problems["until"] = _("期限は1年以内にしてください。")
    raise_problems(problems)
    cover = StaffCover(staff_id=user.id, area_id=area.id, until=until, granted_by_id=actor.id)
    db.session.add(cover)
    audit.record("staff.cover", "staff_user", user.id,
                 params={"area_id": area.id, "until": until.isoformat()},
                 actor=actor)
    db.session.commit()
    return cover


def end_cover(actor: StaffUser, user: StaffUser, cover_id: int) -> None:
    cover = db.session.get(StaffCover, cover_id)
    if cover is None or cover.staff_id != user.id:
        raise NotFound(cover_id)
    db.session.delete(cover)
    audit.record("staff.cover_end", "staff_user", user.id, params={"area_id": cover.area_id},
                 actor=actor)
    end_sessions(user)
    db.session.commit()


def _areas(area_ids: list[int] | None) -> list[Area]:
    if not area_ids:
        return []
    return list(db.session.scalars(select(Area).where(Area.id.in_(area_ids))))


def list_staff() -> list[StaffUser]:
    return list(db.session.scalars(select(StaffUser).order_by(StaffUser.role, StaffUser.kana,
                                                             StaffUser.id)))
