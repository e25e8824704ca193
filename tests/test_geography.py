"""The geography file: Nishi-Tokyo as shipped, reloading it, and what admins see."""
import pytest
from sqlalchemy import func, select

from app.errors import InvalidInput
from app.extensions import db
from app.geography.models import Area, District, Station
from app.geography.services import load_geography
from tests.conftest import district, login_staff, make_supporter, page_text, post


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


def test_an_admin_sets_a_stations_phone_which_the_training_page_then_gives(
        client, admin, coordinator, app):
    """The number a reader is given to call is set on the geography page (the shipped file
    leaves it empty): refused with a reason when it is not one, keeping what was typed;
    saved, audited, shown to the public, and kept when the geography file is loaded again."""
    from app.audit.models import AuditEntry
    station = db.session.scalar(select(Station).order_by(Station.position))
    login_staff(client, admin)
    overview = page_text(client.get("/admin/geography"))
    assert "未設定（通信と研修の案内に載りません）" in overview
    url = f"/admin/geography/stations/{station.id}"
    assert f'href="{url}"' in overview
    response = post(client, url, {"address": "田無総合福祉センター1階", "phone": "042-123"})
    page = page_text(response)
    assert response.status_code == 400
    assert "電話番号は市外局番から10〜11桁で入力してください（例: 042-123-4567）。" in page
    assert 'value="田無総合福祉センター1階"' in page and 'value="042-123"' in page
    # A pasted address longer than the field takes: said, and kept to be shortened (the
    # field has no maxlength, which would cut a paste without a word).
    long_address = "西東京市田無町" + "一" * 300
    response = post(client, url, {"address": long_address, "phone": ""})
    assert response.status_code == 400 and "200文字以内で入力してください。" in page_text(response)
    assert f'value="{long_address}"' in page_text(response)
    assert "maxlength" not in page_text(response)
    for typed in ("042-123-4567（平日）", "tel:0421234567abc"):  # a word would be dialled
        response = post(client, url, {"address": "", "phone": typed})
        assert response.status_code == 400, typed
        assert "電話番号は数字とハイフン（-）だけで入力してください（例: 042-123-4567）。" in page_text(response)
    response = post(client, url, {"address": "田無総合福祉センター1階", "phone": "０４２－１２３－４５６７\x07"})
    assert response.status_code == 400 and "制御文字" in page_text(response)
    response = post(client, url, {"address": "田無総合福祉センター1階", "phone": "０４２ー１２３ー４５６７"})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/geography"
    db.session.expire_all()
    assert (station.address, station.phone) == ("田無総合福祉センター1階", "042-123-4567")
    shown = page_text(client.get(response.headers["Location"]))
    assert f"{station.name}の住所と電話番号を保存しました。" in shown and "042-123-4567" in shown
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "station.contact"))
    assert entry.staff_id == admin.id and entry.target_id == station.id
    # Sent again (Back, then 保存する): nothing changes, nothing more is recorded.
    post(client, url, {"address": "田無総合福祉センター1階", "phone": "042-123-4567"})
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "station.contact")) == 1
    # The shipped file has no number: loading it again keeps the one set here.
    load_geography(app.config["HOTNET_GEOGRAPHY"])
    db.session.expire_all()
    assert station.phone == "042-123-4567"
    # Only admins set it.
    post(client, "/logout")
    from tests.test_trainings import make_session
    session = make_session(capacity=5)
    public = page_text(client.get(f"/trainings/{session.id}"))
    assert f'{station.name} <a class="nowrap" href="tel:0421234567">042-123-4567</a>' in public
    login_staff(client, coordinator)
    assert client.get(url).status_code == 403
    assert post(client, url, {"address": "", "phone": ""}).status_code == 403
    db.session.expire_all()
    assert station.phone == "042-123-4567"


def test_a_station_that_does_not_exist_is_not_found(client, admin):
    login_staff(client, admin)
    assert client.get("/admin/geography/stations/99999").status_code == 404
    assert client.get("/admin/geography/stations/99999999999999999999").status_code == 404
