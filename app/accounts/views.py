"""Sign-in and sign-out for staff and supporters; staff account administration."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from app.access import admin_required
from app.accounts import services
from app.accounts.forms import CoverForm, StaffForm, StaffLoginForm
from app.accounts.models import ROLES, StaffUser
from app.errors import InvalidInput
from app.extensions import db
from app.forms import ConfirmForm
from app.geography.services import list_areas, list_stations
from app.i18n import gettext as _
from app.labels import ROLE
from app.site import add_error, form_when_limited, limited_form, safe_next, sign_in_limits
from app.submissions import create_once

bp = Blueprint("accounts", __name__)


@bp.route("/login", methods=["GET", "POST"])
@sign_in_limits
@form_when_limited(lambda: render_template("accounts/login.html",
                                           form=limited_form(StaffLoginForm())))
def login():
    form = StaffLoginForm()
    if form.validate_on_submit():
        user = services.authenticate_staff(form.email.data, form.password.data)
        if user is None:
            form.password.errors.append(_("メールアドレスかパスワードが違います。"))
        else:
            login_user(user)
            return redirect(safe_next(request.args.get("next"), url_for("supporters.staff_list")))
    return render_template("accounts/login.html", form=form)


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        services.end_sessions(current_user._get_current_object())
        db.session.commit()
    logout_user()
    flash(_("ログアウトしました。"), "success")
    return redirect(url_for("site.home"))


# --- staff administration (admins) --------------------------------------------------------

@bp.get("/admin")
@admin_required
def admin_home():
    """What only admins do, in one place, each with what it is for (the menu keeps the
    daily work; seven more links made it three rows deep on a desktop and most of a phone's
    first screen)."""
    return render_template("accounts/admin_home.html")


def _staff_form(form: StaffForm) -> StaffForm:
    form.role.choices = [(r, ROLE[r]) for r in ROLES]
    form.station_id.choices = [(0, _("なし"))] + [(s.id, s.label) for s in list_stations()]
    form.area_ids.choices = [(a.id, a.label) for a in list_areas()]
    return form


@bp.get("/admin/staff")
@admin_required
def staff_list():
    return render_template("accounts/staff_list.html", staff=services.list_staff())


@bp.route("/admin/staff/new", methods=["GET", "POST"])
@admin_required
def staff_new():
    form = _staff_form(StaffForm())
    if form.validate_on_submit():
        if not form.password.data:
            form.password.errors.append(_("パスワードを入力してください。"))
        else:
            try:
                # Once, however often the form is sent: a repeat shows the list.
                made, _first = create_once(form.submission_key.data, "staff_user", lambda: (
                    services.create_staff(
                        form.email.data, form.name.data, form.password.data, form.role.data,
                        kana=form.kana.data or "", station_id=form.station_id.data or None,
                        area_ids=form.area_ids.data, all_areas=form.all_areas.data,
                        actor=current_user)))
            except InvalidInput as exc:
                db.session.rollback()
                add_error(form, exc)
            else:
                if made is not None:
                    flash(_("職員を登録しました。"), "success")
                return redirect(url_for("accounts.staff_list"))
    return render_template("accounts/staff_form.html", form=form, user=None)


@bp.route("/admin/staff/<int:user_id>", methods=["GET", "POST"])
@admin_required
def staff_edit(user_id: int):
    user = db.session.get(StaffUser, user_id) or abort(404)
    form = _staff_form(StaffForm(obj=user))
    if request.method == "GET":
        form.station_id.data = user.station_id or 0
        form.area_ids.data = [a.id for a in user.areas]
    if form.validate_on_submit():
        if user.id == current_user.id and (form.role.data != "admin" or not form.active.data):
            form.role.errors.append(_("自分自身の管理者権限は外せません。"))
        else:
            try:
                services.update_staff(
                    user, email=form.email.data, name=form.name.data, kana=form.kana.data or "",
                    role=form.role.data,
                    station_id=form.station_id.data or None, area_ids=form.area_ids.data,
                    active=form.active.data, password=form.password.data or "",
                    all_areas=form.all_areas.data, actor=current_user)
            except InvalidInput as exc:
                add_error(form, exc)
            else:
                if user.id == current_user.id:  # a new password ended this session too
                    login_user(user)
                flash(_("職員の情報を保存しました。"), "success")
                return redirect(url_for("accounts.staff_list"))
    return _staff_page(form, user)


def _cover_form(form: CoverForm | None = None) -> CoverForm:
    form = form or CoverForm(formdata=None)
    form.area_id.choices = [(0, _("選んでください"))] + [(a.id, a.label) for a in list_areas()]
    return form


def _staff_page(form, user, cover_form=None, status: int = 200):
    return render_template("accounts/staff_form.html", form=form, user=user,
                           cover_form=_cover_form(cover_form),
                           covers=services.active_covers(user)), status


@bp.post("/admin/staff/<int:user_id>/cover")
@admin_required
def staff_cover(user_id: int):
    user = db.session.get(StaffUser, user_id) or abort(404)
    form = _cover_form(CoverForm())
    if form.validate_on_submit():
        try:
            services.grant_cover(current_user, user, form.area_id.data, form.until.data)
        except InvalidInput as exc:
            add_error(form, exc)
        else:
            flash(_("応援の圏域を追加しました。"), "success")
            return redirect(url_for("accounts.staff_edit", user_id=user.id) + "#cover")
    staff_form = _staff_form(StaffForm(obj=user, formdata=None))
    staff_form.station_id.data = user.station_id or 0
    staff_form.area_ids.data = [a.id for a in user.areas]
    return _staff_page(staff_form, user, form, 400)


@bp.post("/admin/staff/<int:user_id>/cover/<int:cover_id>/end")
@admin_required
def staff_cover_end(user_id: int, cover_id: int):
    user = db.session.get(StaffUser, user_id) or abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.end_cover(current_user, user, cover_id)
    flash(_("応援の圏域を外しました。"), "success")
    return redirect(url_for("accounts.staff_edit", user_id=user.id) + "#cover")
