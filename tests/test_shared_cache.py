"""The cache as production runs it (docs/deploy.md): several workers sharing one Redis
(HOTNET_CACHE_URL). What one worker changes, every other shows at once, and what is cached
comes back whole from Redis (stored as bytes, not kept in the process). Both databases."""
from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from app import create_app
from app.config import _cache
from app.extensions import db
from tests.conftest import login_staff, page_text

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def workers(app_config, app):
    """Two applications (two gunicorn workers) on the test's database and one Redis."""
    prefix = f"hotnet-test-{secrets.token_hex(4)}:"
    config = {**app_config, **_cache(REDIS_URL, 60), "CACHE_KEY_PREFIX": prefix}
    apps = [create_app(config), create_app(config)]
    server = redis.Redis.from_url(REDIS_URL)
    yield apps, server, prefix
    for one in apps:
        with one.app_context():
            db.session.remove()
            db.engine.dispose()
    for key in server.scan_iter(prefix + "*"):
        server.delete(key)


def test_a_category_renamed_by_one_worker_is_shown_renamed_by_the_other(workers, coordinator):
    from app.concerns.categories import update_category
    from app.concerns.models import ConcernCategory
    from app.concerns.rules import PICK_LISTS_KEY
    (first, second), server, prefix = workers
    client = second.test_client()
    login_staff(client, coordinator)
    with first.app_context():
        category = db.session.scalar(select(ConcernCategory).order_by(ConcernCategory.position))
        category_id, old_name = category.id, category.name
    page = page_text(client.get("/staff/concerns"))
    assert f'<option value="{category_id}"' in page and old_name in page
    assert server.exists(prefix + PICK_LISTS_KEY)  # kept in Redis, not in the worker
    assert old_name in page_text(client.get("/staff/concerns"))  # read back from Redis whole
    with first.app_context():
        update_category(db.session.get(ConcernCategory, category_id), "見守りの相談（改）",
                        actor=None)
    assert not server.exists(prefix + PICK_LISTS_KEY)
    page = page_text(client.get("/staff/concerns"))
    assert "見守りの相談（改）" in page and old_name not in page
    assert server.exists(prefix + PICK_LISTS_KEY)


def _options(page: str, select_id: str) -> list[tuple[str, str]]:
    """(value, text) of a pick list's choices, the first (「すべて」) left out."""
    found = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', page, re.S)
    assert found, select_id
    return re.findall(r'<option value="([^"]+)"[^>]*>([^<]*)</option>', found.group(1))


def test_the_registry_filters_show_a_renamed_category_or_district_at_once_on_another_worker(
        workers, admin, tmp_path):
    from app.geography.services import PLACES_KEY, load_geography
    from app.supporters.categories import CHOICES_KEY, add_category, rename_category
    from app.supporters.models import BusinessCategory
    (first, second), server, prefix = workers
    client = second.test_client()
    login_staff(client, admin)
    page = page_text(client.get("/staff/supporters"))
    assert "田無小地区（例）" in [text for _value, text in _options(page, "district")]
    assert "不動産" in [text for _value, text in _options(page, "category")]
    # The places and the categories are kept in Redis, and so is the filters' panel.
    assert server.exists(prefix + PLACES_KEY) and server.exists(prefix + CHOICES_KEY)
    assert any(b"supporter-filters" in key for key in server.scan_iter(prefix + "*"))
    assert page_text(client.get("/staff/supporters")) == page  # read back whole
    with first.app_context():
        renamed = tmp_path / "geography.toml"
        renamed.write_text(Path(first.config["HOTNET_GEOGRAPHY"]).read_text(encoding="utf-8")
                           .replace("田無小地区（例）", "田無小学校地区"), encoding="utf-8")
        load_geography(renamed)
    districts = [text for _value, text in _options(page_text(client.get("/staff/supporters")),
                                                   "district")]
    assert "田無小学校地区" in districts and "田無小地区（例）" not in districts
    with first.app_context():
        category = db.session.scalar(
            select(BusinessCategory).where(BusinessCategory.code == "real_estate"))
        rename_category(category, "不動産・住まい", actor=None)
    categories = [text for _value, text in _options(page_text(client.get("/staff/supporters")),
                                                    "category")]
    assert "不動産・住まい" in categories and "不動産" not in categories
    with first.app_context():
        add_category("理容・美容", actor=None)
    assert "理容・美容" in [text for _value, text in _options(
        page_text(client.get("/staff/supporters")), "category")]


def test_the_cached_registry_filters_follow_the_viewer_their_language_and_their_choices(
        workers, admin, coordinator):
    from tests.conftest import district, post
    (first, second), _server, _prefix = workers
    mine, everyone = first.test_client(), second.test_client()
    login_staff(mine, coordinator)
    login_staff(everyone, admin)
    with first.app_context():
        home = district("d01")
        home_id, home_area = home.id, home.area_id
        own = {str(d.id) for d in home.area.districts}
        elsewhere = district("d12").area_id
    # The admin's panel is made first and kept; the coordinator's lists their area's only.
    assert len(_options(page_text(everyone.get("/staff/supporters")), "district")) == 20
    page = page_text(mine.get("/staff/supporters"))
    assert {value for value, _text in _options(page, "district")} == own
    assert {v for v, _t in _options(page, "area")} == {str(home_area)}
    assert str(elsewhere) in {v for v, _t in _options(page_text(everyone.get("/staff/supporters")),
                                                      "area")}
    assert len(_options(page_text(everyone.get("/staff/supporters")), "district")) == 20
    # What is chosen is shown chosen, and no longer once it is taken off.
    page = page_text(mine.get("/staff/supporters", query_string={"district": home_id}))
    assert f'<option value="{home_id}" selected>' in page
    assert '<details class="more-filters" open>' in page
    page = page_text(mine.get("/staff/supporters", query_string={"q": "山田"}))
    assert "selected>" not in page.split('id="district"')[1].split("</select>")[0]
    assert '<details class="more-filters">' in page
    # In English: the English panel, and the Japanese one stays Japanese.
    post(everyone, "/language", {"lang": "en", "next": "/"})
    page = page_text(everyone.get("/staff/supporters"))
    assert "Central area" in [text for _value, text in _options(page, "area")]
    assert "Filters and order (area, district, status …)" in page
    page = page_text(mine.get("/staff/supporters"))
    assert "中部圏域" in [text for _value, text in _options(page, "area")]
    assert "絞り込み・並び順（圏域・地区・状態など）" in page
