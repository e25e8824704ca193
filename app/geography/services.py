"""Loading the geography file and reading the geography."""
from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.audit import services as audit
from app.errors import InvalidInput, NotFound, raise_problems
from app.extensions import cache as shared_cache
from app.extensions import db
from app.formatting import bracketed
from app.geography.models import Area, District, Named, Station
from app.i18n import gettext as _
from app.text import phone_text, tidy
from app.validators import phone_problem


@dataclass
class LoadResult:
    added: int = 0
    updated: int = 0


def _read(path: str | Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise InvalidInput(f"地域ファイルが見つかりません: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"地域ファイルの書式に誤りがあります: {exc}") from exc


def _check_geography(data: dict) -> None:
    stations = {s.get("code") for s in data.get("station", [])}
    areas = {a.get("code") for a in data.get("area", [])}
    problems = []
    for kind in ("station", "area", "district"):
        codes = [item.get("code") for item in data.get(kind, [])]
        for item in data.get(kind, []):
            if not item.get("code") or not item.get("name"):
                problems.append(f"{kind}: code と name は必須です ({item})")
        if len(codes) != len(set(codes)):
            problems.append(f"{kind}: code が重複しています")
    for area in data.get("area", []):
        if area.get("station") not in stations:
            problems.append(f"圏域 {area.get('code')}: ステーション {area.get('station')} がありません")
    for district in data.get("district", []):
        if district.get("area") not in areas:
            problems.append(f"地区 {district.get('code')}: 圏域 {district.get('area')} がありません")
    if not stations or not areas:
        problems.append("ステーションと圏域が少なくとも1つずつ必要です")
    if problems:
        raise InvalidInput("\n".join(problems))


def _upsert(model, code: str, values: dict, result: LoadResult):
    row = db.session.scalar(select(model).where(model.code == code))
    if row is None:
        row = model(code=code, **values)
        db.session.add(row)
        result.added += 1
    else:
        changed = False
        for key, value in values.items():
            if getattr(row, key) != value:
                setattr(row, key, value)
                changed = True
        result.updated += int(changed)
    db.session.flush()
    return row


# A station's contact details (shown on newsletters and the training page) and their limits.
CONTACT = {"address": 200, "phone": 40}


def load_geography(path: str | Path) -> LoadResult:
    """Add or update stations, areas and districts from a TOML file, matched by code.

    Nothing else is touched: supporters keep their district, and rows missing from the
    file are left in place (a district that disappears may still have supporters).
    """
    data = _read(path)
    _check_geography(data)
    result = LoadResult()
    stations = {}
    for pos, item in enumerate(data["station"]):
        values = {"name": item["name"], "name_en": item.get("name_en", ""), "position": pos}
        # The file's address and phone number when it gives them; else those an admin has
        # set on the geography page are kept (a station's own number is not in the file
        # that comes with Hot-Net).
        values.update({key: item[key] for key in CONTACT if item.get(key)})
        stations[item["code"]] = _upsert(Station, item["code"], values, result)
    areas = {}
    for pos, item in enumerate(data["area"]):
        areas[item["code"]] = _upsert(
            Area, item["code"],
            {"name": item["name"], "name_en": item.get("name_en", ""), "station_id": stations[item["station"]].id, "position": pos},
            result,
        )
    for pos, item in enumerate(data.get("district", [])):
        _upsert(
            District, item["code"],
            {"name": item["name"], "name_en": item.get("name_en", ""), "kana": item.get("kana", ""),
             "area_id": areas[item["area"]].id, "position": pos},
            result,
        )
    db.session.commit()
    shared_cache.delete(PLACES_KEY)
    return result


# Counts per district that the layers above contribute to the admin's overview: a label and
# a function returning {district id: count}. Geography itself knows no supporters.
DISTRICT_COUNTS: dict[str, Callable[[], dict[int, int]]] = {}


def _names(model) -> Callable[[], dict[int, str]]:
    """{id: name} in the reader's language."""
    return lambda: {row.id: row.label for row in db.session.scalars(select(model))}


# The audit log names the places its filters refer to by id.
audit.PLACE_NAMES.update(station=_names(Station), area=_names(Area), district=_names(District))


def list_stations() -> list[Station]:
    """All stations with their areas and districts, in the file's order."""
    return list(db.session.scalars(
        select(Station)
        .options(selectinload(Station.areas).selectinload(Area.districts))
        .order_by(Station.position)
    ))


def station_phones() -> list[tuple[str, str]]:
    """(station, phone number) of the stations that have a number to call, in order (one
    query: a public page asks, and needs neither areas nor districts)."""
    return [(st.label, st.phone) for st in db.session.scalars(
        select(Station).where(Station.phone != "").order_by(Station.position))]


def list_areas() -> list[Area]:
    return list(db.session.scalars(select(Area).order_by(Area.position)))


@dataclass(frozen=True, eq=False)
class PlaceView(Named):
    """A station, area or district as pick lists and filters name it, read without the ORM
    (a page that only names places pays for one plain query, not for mapped objects)."""
    id: int
    name: str
    name_en: str


@dataclass(frozen=True, eq=False)
class AreaView(PlaceView):
    station_id: int
    station: PlaceView


@dataclass(frozen=True, eq=False)
class DistrictView(PlaceView):
    area_id: int
    area: AreaView


@cache
def _places_statement():
    """Built once: a statement is immutable, and building it costs more than running it."""
    return (select(District.id, District.name, District.name_en,
                   Area.id, Area.name, Area.name_en, Station.id, Station.name, Station.name_en)
            .join(Area, Area.id == District.area_id).join(Station, Station.id == Area.station_id)
            .order_by(Area.position, District.position))


# The places as pick lists and lists name them are kept in the cache for a short while
# (nearly every staff page names places). Loading the geography file clears them; another
# process's own cache (without Redis) keeps them until the cache time is up.
PLACES_KEY = "geography-places"


@shared_cache.cached(key_prefix=PLACES_KEY)
def list_districts() -> list[DistrictView]:
    """Every district with its area and the area's station, in one query (read-only views
    of them: for names and ids, not for changing them)."""
    rows = db.session.execute(_places_statement()).tuples()
    stations: dict[int, PlaceView] = {}
    areas: dict[int, AreaView] = {}
    out = []
    for d_id, d_name, d_en, a_id, a_name, a_en, s_id, s_name, s_en in rows:
        if s_id not in stations:
            stations[s_id] = PlaceView(s_id, s_name, s_en)
        if a_id not in areas:
            areas[a_id] = AreaView(a_id, a_name, a_en, station_id=s_id, station=stations[s_id])
        area = areas[a_id]
        out.append(DistrictView(d_id, d_name, d_en, area_id=a_id, area=area))
    return out


def district_choices() -> list[tuple[int, str]]:
    """(id, "district (area)") pairs for pick lists, grouped by area order (the brackets
    as the reader's language writes them)."""
    return [(d.id, f"{d.label}{bracketed(d.area.label)}") for d in list_districts()]


def get_station(station_id: int) -> Station:
    station = db.session.get(Station, station_id)
    if station is None:
        raise NotFound(station_id)
    return station


def change_station_contact(station_id: int, address: str | None, phone: str | None, *,
                           actor) -> Station:
    """Set a station's address and phone number (admins): the number a newsletter and the
    training page give readers to call. Raises InvalidInput with every problem at once."""
    station = get_station(station_id)
    values = {"address": tidy(address), "phone": phone_text(phone)}
    problems = {key: _("%(max)d文字以内で入力してください。", max=limit)
                for key, limit in CONTACT.items() if len(values[key]) > limit}
    if "phone" not in problems and (problem := phone_problem(values["phone"])):
        problems["phone"] = problem
    raise_problems(problems)
    changed = {key: value for key, value in values.items() if getattr(station, key) != value}
    for key, value in changed.items():
        setattr(station, key, value)
    if changed:
        audit.record("station.contact", "station", station.id,
                     params={"name": station.name}, actor=actor)
    db.session.commit()
    return station
