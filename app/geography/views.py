"""Admins see the geography that the geography file defines, and set each station's
address and phone number (what newsletters and the training page give readers to call)."""
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from app.access import admin_required
from app.errors import InvalidInput
from app.extensions import db
from app.geography import services
from app.geography.forms import StationContactForm
from app.geography.services import DISTRICT_COUNTS, list_stations
from app.i18n import gettext as _
from app.site import add_error

bp = Blueprint("geography", __name__)


@bp.get("/admin/geography")
@admin_required
def overview():
    # Each domain above says how many of its records each district has (supporters do).
    counts = {label: count() for label, count in DISTRICT_COUNTS.items()}
    return render_template("geography/overview.html", stations=list_stations(), counts=counts)


@bp.route("/admin/geography/stations/<int:station_id>", methods=["GET", "POST"])
@admin_required
def station_contact(station_id: int):
    station = services.get_station(station_id)
    form = StationContactForm(obj=station)
    if form.validate_on_submit():
        try:
            services.change_station_contact(station.id, form.address.data, form.phone.data,
                                            actor=current_user)
        except InvalidInput as exc:
            db.session.rollback()
            add_error(form, exc)
        else:
            flash(_("%(station)sの住所と電話番号を保存しました。", station=station.label), "success")
            return redirect(url_for("geography.overview"))  # the message at the top
    return render_template("geography/station.html", form=form, station=station), \
        400 if form.errors else 200
