"""The cache as production runs it (docs/deploy.md): several workers sharing one Redis
(HOTNET_CACHE_URL). What one worker changes, every other shows at once, and what is cached
comes back whole from Redis (stored as bytes, not kept in the process). Both databases."""
from __future__ import annotations

import secrets

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
