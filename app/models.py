"""Imports every domain's models, so that SQLAlchemy metadata and Alembic see them all."""
from app.accounts.models import StaffCover, StaffUser  # noqa: F401
from app.audit.models import AuditEntry  # noqa: F401
from app.concerns.models import (  # noqa: F401
    Concern,
    ConcernCategory,
    ConcernEvent,
    ConcernLink,
    DigestSent,
    ReferenceCounter,
)
from app.geography.models import Area, District, Station  # noqa: F401
from app.heartbeat import ServiceStatus  # noqa: F401
from app.newsletters.models import Bounce, Delivery, Newsletter  # noqa: F401
from app.outbox.models import OutboxMessage  # noqa: F401
from app.partners.models import Agency  # noqa: F401
from app.submissions import SubmissionKey  # noqa: F401
from app.supporters.models import (  # noqa: F401
    BusinessCategory,
    LoginLink,
    Supporter,
    SupporterChange,
    SupporterImport,
    SupporterImportRow,
    is_search_index,
)
from app.trainings.models import Registration, Training, TrainingSession  # noqa: F401


def made_by_others(name: str) -> bool:
    """Whether a table is one no model describes: APScheduler's job table, and SQLite's
    search index and its own tables (made by their migration; autogenerate leaves them be)."""
    return name == "scheduler_job" or is_search_index(name)
