from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.labels import localized


class Named:
    """A place's name as the reader reads it: the English name, when there is one and the
    reader reads English; else the name as the council wrote it."""

    @property
    def label(self) -> str:
        return localized(self.name, self.name_en)


class Station(Named, db.Model):
    """A Hot-Net station (ほっとネットステーション) where coordinators work."""

    __tablename__ = "station"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)

    areas: Mapped[list["Area"]] = relationship(back_populates="station", order_by="Area.position")


class Area(Named, db.Model):
    """A daily-life area (圏域), served by one station."""

    __tablename__ = "area"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    station_id: Mapped[int] = mapped_column(ForeignKey("station.id"))
    position: Mapped[int] = mapped_column(Integer, default=0)

    station: Mapped[Station] = relationship(back_populates="areas")
    districts: Mapped[list["District"]] = relationship(
        back_populates="area", order_by="District.position"
    )


class District(Named, db.Model):
    """A district (地区, a former elementary-school district) inside one area."""

    __tablename__ = "district"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    kana: Mapped[str] = mapped_column(String(100), default="")
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"))
    position: Mapped[int] = mapped_column(Integer, default=0)

    area: Mapped[Area] = relationship(back_populates="districts")
