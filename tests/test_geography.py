"""The geography file: Nishi-Tokyo as shipped, reloading it, and what admins see."""
import pytest
from sqlalchemy import func, select

from app.errors import InvalidInput
from app.extensions import db
from app.geography.models import Area, District, Station
from app.geography.services import load_geography
from tests.conftest import district, login_staff, make_supporter, page_text


def test_shipped_file_describes_nishitokyo(app):
    result = load_geography(app.config["HOTNET_GEOGRAPHY"])
    assert result.added == 2 + 4 + 20
    stations = {s.code: s for s in db.session.scalars(select(Station))}
    assert {s.name for s in stations.values()} == {"田無ステーション", "保谷ステーション"}
    areas = list(db.session.scalars(select(Area)))
    assert len(areas) == 4 and all(a.station_id in (s.id for s in stations.values()) for a in areas)
    for area in areas:
        assert len(area.districts) == 5
    assert db.session.scalar(select(func.count(District.id))) == 20


def test_reloading_updates_names_without_touching_supporters(app, geography, tmp_path):
    supporter = make_supporter(district_id=district("d07").id)
    text = open(app.config["HOTNET_GEOGRAPHY"], encoding="utf-8").read()
    edited = tmp_path / "geo.toml"
    edited.write_text(text.replace("上向台小地区（例）", "上向台地区"), encoding="utf-8")
    result = load_geography(edited)
    assert (result.added, result.updated) == (0, 1)
    db.session.refresh(supporter)
    assert supporter.district.name == "上向台地区" and supporter.name == "山田 太郎"


def test_load_command(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["hotnet", "load-geography"])
    assert result.exit_code == 0 and "26 added" in result.output
    result = runner.invoke(args=["hotnet", "load-geography"])
    assert "0 added, 0 updated" in result.output


def test_a_broken_file_is_refused_with_a_reason(app, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[station]]\ncode="a"\nname="A"\n[[area]]\ncode="x"\nname="X"\nstation="nope"\n',
                   encoding="utf-8")
    with pytest.raises(InvalidInput, match="ステーション nope がありません"):
        load_geography(bad)
    assert db.session.scalar(select(func.count(Station.id))) == 0


def test_admin_sees_the_geography(client, admin):
    make_supporter(district_id=district("d20").id)
    login_staff(client, admin)
    body = page_text(client.get("/admin/geography"))
    assert "田無ステーション" in body and "西部圏域" in body and "西原小地区（例）" in body
    assert body.count("<tr><td>") == 20
