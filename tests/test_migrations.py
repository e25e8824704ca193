"""The schema is built by migrations, and migrations and models agree, on both databases."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from app import create_app
from app.config import database_url
from app.extensions import db
from tests.conftest import make_database


def test_migrations_build_the_schema_the_models_describe(request, tmp_path_factory, backend,
                                                          app_config):
    url = database_url(make_database(request, tmp_path_factory, backend))
    app = create_app(dict(app_config, SQLALCHEMY_DATABASE_URI=url))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
            tables = set(inspect(conn).get_table_names())
        assert diff == []
        assert {"supporter", "supporter_search_term", "staff_user", "district",
                "audit_entry"} <= tables
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
