"""Admins see the geography that the geography file defines."""
from flask import Blueprint, render_template

from app.access import admin_required
from app.geography.services import DISTRICT_COUNTS, list_stations

bp = Blueprint("geography", __name__)


@bp.get("/admin/geography")
@admin_required
def overview():
    # Each domain above says how many of its records each district has (supporters do).
    counts = {label: count() for label, count in DISTRICT_COUNTS.items()}
    return render_template("geography/overview.html", stations=list_stations(), counts=counts)
