"""The directory of partner agencies: staff search and read it; admins edit it."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.access import admin_required, staff_required
from app.errors import InvalidInput
from app.extensions import db
from app.geography.services import district_choices, list_areas
from app.i18n import gettext as _
from app.labels import AGENCY_KIND
from app.partners import services
from app.partners.forms import AgencyForm, ImportForm
from app.partners.models import KINDS
from app.site import add_error, form_data, int_arg, search_arg, validate_with_rules
from app.spreadsheet import csv_response
from app.submissions import create_once

bp = Blueprint("partners", __name__)
MAX_UPLOAD = 2 * 1024 * 1024  # a directory of agencies is a few kilobytes


@bp.get("/staff/partners")
@staff_required
def index():
    q = search_arg()
    kind = request.args.get("kind", "")
    area_id = int_arg("area")
    agencies = services.list_agencies(q, kind if kind in KINDS else "", area_id)
    return render_template("partners/index.html", agencies=agencies, q=q, kind=kind,
                           area_id=area_id, areas=list_areas(), kinds=AGENCY_KIND)


@bp.get("/staff/partners/<int:agency_id>")
@staff_required
def show(agency_id: int):
    agency = services.get_agency(agency_id)
    return render_template("partners/show.html", agency=agency,
                           categories=dict(services.category_choices()))


@bp.get("/staff/partners/export.csv")
@staff_required
def export():
    rows = list(services.export_rows(services.list_agencies()))  # small: read before commit
    services.record_export(len(rows), actor=current_user)
    return csv_response([header for header, _key in services.COLUMNS], rows, "partners.csv")


def _form(form: AgencyForm) -> AgencyForm:
    form.kind.choices = [("", _("選んでください"))] + [(k, str(v)) for k, v in AGENCY_KIND.items()]
    form.area_ids.choices = [(a.id, a.label) for a in list_areas()]
    form.district_ids.choices = district_choices()
    form.category_codes.choices = services.category_choices()
    return form


def _edit(agency):
    form = _form(AgencyForm(obj=agency))
    if request.method == "GET" and agency is not None:
        form.area_ids.data = [a.id for a in agency.areas]
        form.district_ids.data = [d.id for d in agency.districts]
        form.category_codes.data = list(agency.category_codes)
    if validate_with_rules(form, lambda: services.problems(form_data(form, services.FIELDS))):
        try:
            # A new agency is added once, however often the form is sent (a double click).
            saved, first = create_once(
                form.submission_key.data if agency is None else None, "agency",
                lambda: services.save_agency(agency, form_data(form, services.FIELDS),
                                             actor=current_user))
        except InvalidInput as exc:
            db.session.rollback()
            add_error(form, exc)
        else:
            if saved is None:
                return redirect(url_for("partners.show", agency_id=first) if first
                                else url_for("partners.index"))
            flash(_("つなぎ先を保存しました。"), "success")
            return redirect(url_for("partners.show", agency_id=saved.id))
    return render_template("partners/form.html", form=form, agency=agency), \
        400 if form.errors else 200


@bp.route("/admin/partners/new", methods=["GET", "POST"])
@admin_required
def new():
    return _edit(None)


@bp.route("/admin/partners/<int:agency_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(agency_id: int):
    return _edit(services.get_agency(agency_id))


@bp.route("/admin/partners/import", methods=["GET", "POST"])
@admin_required
def import_csv():
    form = ImportForm()
    if form.validate_on_submit():
        upload = request.files.get("file")
        raw = upload.stream.read(MAX_UPLOAD + 1) if upload else b""
        try:
            if not raw:
                raise InvalidInput(_("ファイルを選んでください。"), field="file")
            if len(raw) > MAX_UPLOAD:
                raise InvalidInput(_("ファイルが大きすぎます（2 MB まで）。"), field="file")
            count = services.import_csv(raw, actor=current_user)
        except InvalidInput as exc:
            add_error(form, exc)
        else:
            flash(_("%(n)d件のつなぎ先を取り込みました（同じ名称は更新）。", n=count), "success")
            return redirect(url_for("partners.index"))
    return render_template("partners/import.html", form=form), 400 if form.errors else 200
