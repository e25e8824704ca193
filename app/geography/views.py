"""Admins see the geography that the geography file defines."""
from flask import Blueprint, render_template
from sqlalchemy import func, select

from app.accounts.services import admin_required
from app.extensions import db
from app.geography.services import list_stations
from app.supporters.models import Supporter

bp = Blueprint("geography", __name__)


@bp.get("/admin/geography")
@admin_required
def overview():
    counts = dict(db.session.execute(
        select(Supporter.district_id, func.count(Supporter.id))
        .where(Supporter.status.in_(("applied", "active", "paused")))
        .group_by(Supporter.district_id)
    ).all())
    return render_template("geography/overview.html", stations=list_stations(), counts=counts)
