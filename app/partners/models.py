"""Partner agencies (つなぎ先) and the areas and districts they serve."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.dbtypes import UTCDateTime, utcnow
from app.extensions import db
from app.geography.models import Area, District

KINDS = ("houkatsu", "life_support", "disability", "children", "minsei", "health_center",
         "medical", "police_fire", "other")

agency_area = Table(
    "agency_area", db.Model.metadata,
    Column("agency_id", Integer, ForeignKey("agency.id", ondelete="CASCADE"), primary_key=True),
    Column("area_id", Integer, ForeignKey("area.id", ondelete="CASCADE"), primary_key=True),
)
agency_district = Table(
    "agency_district", db.Model.metadata,
    Column("agency_id", Integer, ForeignKey("agency.id", ondelete="CASCADE"), primary_key=True),
    Column("district_id", Integer, ForeignKey("district.id", ondelete="CASCADE"),
           primary_key=True),
)


class Agency(db.Model):
    """An organisation a concern can be passed on to. Serving no area means the whole town."""

    __tablename__ = "agency"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kana: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    fax: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    postal_code: Mapped[str] = mapped_column(String(10), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    hours: Mapped[str] = mapped_column(String(300), default="")
    contact_person: Mapped[str] = mapped_column(String(100), default="")
    # Codes of the concern categories the agency takes (the concerns domain, above, owns
    # the categories; partners only keep their codes). Empty: any.
    category_codes: Mapped[list] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_key: Mapped[str] = mapped_column(String(400), default="", index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    areas: Mapped[list[Area]] = relationship(secondary=agency_area, order_by=Area.position)
    districts: Mapped[list[District]] = relationship(secondary=agency_district,
                                                     order_by=District.position)

    def serves(self, district: District | None) -> int:
        """How closely it serves a district: 2 the district itself, 1 its area or the whole
        town, 0 not at all."""
        if district is None:
            return 1 if not self.areas and not self.districts else 0
        if any(d.id == district.id for d in self.districts):
            return 2
        if any(a.id == district.area_id for a in self.areas) or (not self.areas and not self.districts):
            return 1
        return 0
