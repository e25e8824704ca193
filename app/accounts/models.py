from __future__ import annotations

from datetime import date, datetime

from flask import current_app
from sqlalchemy import Boolean, Column, Date, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db
from app.geography.models import Area, Station

ROLES = ("admin", "coordinator")

staff_area = Table(
    "staff_area",
    db.Model.metadata,
    Column("staff_id", Integer, ForeignKey("staff_user.id", ondelete="CASCADE"), primary_key=True),
    Column("area_id", Integer, ForeignKey("area.id", ondelete="CASCADE"), primary_key=True),
)


class StaffUser(db.Model):
    """A member of the council's staff: an admin (事務局) or a coordinator."""

    __tablename__ = "staff_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kana: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(20), default="coordinator")
    station_id: Mapped[int | None] = mapped_column(ForeignKey("station.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Station leads and the office may see every area; everyone else sees `areas` (and any
    # temporary cover an admin gives). Admins always see every area.
    all_areas: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of the id kept in every session cookie: raising it ends every session signed in
    # before (sign-out, a new password, other roles or areas, deactivation).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    station: Mapped[Station | None] = relationship()
    areas: Mapped[list[Area]] = relationship(secondary=staff_area, order_by=Area.position)

    # Flask-Login protocol
    is_authenticated = True
    is_anonymous = False
    is_staff = True
    is_supporter = False

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def get_id(self) -> str:
        return f"staff:{self.id}:{self.session_generation or 0}"

    def set_password(self, password: str) -> None:
        method = current_app.config.get("HOTNET_PASSWORD_METHOD", "scrypt")
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class StaffCover(db.Model):
    """Temporary cover: a staff member also serves an area until a day (inclusive)."""

    __tablename__ = "staff_cover"
    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"),
                                          index=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id", ondelete="CASCADE"))
    until: Mapped[date] = mapped_column(Date)
    granted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    area: Mapped[Area] = relationship()
