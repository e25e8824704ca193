"""Training pages: the public list and calendar, sign-ups, and the staff's sessions and rosters."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask import session as session_store
from flask_login import current_user
from sqlalchemy.exc import OperationalError

from app import submissions
from app.access import staff_required, supporter_required
from app.accounts.services import Viewer, area_scope
from app.errors import InvalidInput, InvalidState
from app.extensions import db, limiter
from app.forms import ConfirmForm
from app.geography.services import district_choices, list_stations, station_phones
from app.i18n import gettext as _
from app.site import (
    add_error,
    busy,
    form_data,
    form_int,
    is_busy,
    parse_id,
    public_form_limit,
    search_arg,
    validate_with_rules,
)
from app.submissions import AlreadySubmitted, create_once
from app.supporters import services as supporters
from app.supporters.forms import ApplicationForm
from app.trainings import services
from app.trainings.calendar import session_calendar
from app.trainings.forms import AttendanceForm, SessionForm, TrainingForm

bp = Blueprint("trainings", __name__)


def _session(session_id: int, *, public: bool = False):
    found = services.get_session(session_id)
    if public and not found.training.published:
        abort(404)
    return found


# --- public -------------------------------------------------------------------------------

@bp.get("/trainings")
def index():
    return render_template("trainings/index.html", sessions=services.upcoming_sessions())


@bp.get("/trainings.ics")
def calendar():
    body = session_calendar(services.upcoming_sessions())
    return Response(body, mimetype="text/calendar", headers={
        "Content-Disposition": "inline; filename=hotnet-trainings.ics"})


def _mine(session):
    if current_user.is_authenticated and current_user.is_supporter:
        return services.place_of(session, current_user)
    return None


@bp.get("/trainings/<int:session_id>")
def session(session_id: int):
    found = _session(session_id, public=True)
    return render_template("trainings/session.html", session=found, mine=_mine(found),
                           form=ConfirmForm(),
                           phones=station_phones())


@bp.post("/trainings/<int:session_id>/sign-up")
@supporter_required
def sign_up(session_id: int):
    found = _session(session_id, public=True)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            registration = services.sign_up(found.id, current_user._get_current_object(), actor=current_user)
        except (InvalidInput, InvalidState) as exc:
            flash(str(exc), "error")
        else:
            flash(_("お申込みを受け付けました。") if registration.status == "confirmed"
                  else _("定員に達しているため、キャンセル待ちに登録しました。席が空くとメールでお知らせします。"),
                  "success")
    return redirect(url_for("trainings.session", session_id=found.id))


@bp.post("/trainings/registrations/<int:registration_id>/cancel")
@supporter_required
def cancel_mine(registration_id: int):
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            registration = services.cancel(registration_id, actor=current_user._get_current_object())
        except InvalidState as exc:
            flash(str(exc), "error")
        else:
            flash(_("お申込みを取り消しました。"), "success")
            return redirect(url_for("trainings.session", session_id=registration.session_id))
    return redirect(url_for("trainings.mine"))


@bp.route("/trainings/<int:session_id>/visitor", methods=["GET", "POST"])
@limiter.limit(public_form_limit, methods=["POST"])
def visitor(session_id: int):
    found = _session(session_id, public=True)
    if found.training.kind != "registration":
        abort(404)
    form = ApplicationForm()
    form.district_id.choices = [(0, _("わからない・選ばない"))] + district_choices()
    if request.method == "POST":
        data = dict(form_data(form, supporters.EDITABLE), kind="person")
        if validate_with_rules(form, lambda: supporters.application_problems(data)):
            content = dict(data, session_id=found.id)
            key = submissions.key_for("visitor_sign_up", content, form.submission_key.data)
            try:
                registration = services.sign_up_visitor(found.id, data, key)
                submissions.remember("visitor_sign_up", content, key)
            except AlreadySubmitted as exc:  # a reload or a double click: the first one stands
                registration = services.get_registration(exc.first.result_id)
            except (InvalidInput, InvalidState) as exc:
                db.session.rollback()
                add_error(form, exc)
                registration = None
            except OperationalError as exc:
                if not is_busy(exc):
                    raise
                busy(form)
                return render_template("trainings/visitor.html", session=found, form=form), 503
            if registration is not None:
                session_store["visitor_sign_up"] = registration.id
                return redirect(url_for("trainings.visitor_thanks", session_id=found.id))
    return render_template("trainings/visitor.html", session=found, form=form)


@bp.get("/trainings/<int:session_id>/visitor/thanks")
def visitor_thanks(session_id: int):
    found = _session(session_id, public=True)
    registration_id = session_store.get("visitor_sign_up")
    registration = services.find_registration(registration_id) if registration_id else None
    if registration is None or registration.session_id != found.id:
        return redirect(url_for("trainings.visitor", session_id=found.id))
    return render_template("trainings/visitor_thanks.html", session=found,
                           registration=registration)


@bp.get("/me/trainings")
@supporter_required
def mine():
    return render_template("trainings/mine.html", trainings=services.my_trainings(current_user),
                           form=ConfirmForm())


# --- staff ------------------------------------------------------------------------------------

@bp.get("/staff/trainings")
@staff_required
def staff_index():
    return render_template("trainings/staff_index.html", trainings=services.list_trainings())


def _training_form(training):
    form = TrainingForm(obj=training)
    if form.validate_on_submit():
        try:
            # A new training is added once, however often the form is sent (a double click).
            saved, first = create_once(form.submission_key.data if training is None else None,
                                       "training", lambda: services.save_training(training, form_data(
                                           form, ("title", "kind", "description", "published")),
                                           actor=current_user))
        except InvalidInput as exc:
            db.session.rollback()
            add_error(form, exc)
        else:
            if saved is None:
                return redirect(url_for("trainings.staff_training", training_id=first) if first
                                else url_for("trainings.staff_index"))
            flash(_("研修を保存しました。"), "success")
            return redirect(url_for("trainings.staff_training", training_id=saved.id))
    return render_template("trainings/training_form.html", form=form, training=training)


@bp.route("/staff/trainings/new", methods=["GET", "POST"])
@staff_required
def staff_new():
    return _training_form(None)


@bp.route("/staff/trainings/<int:training_id>/edit", methods=["GET", "POST"])
@staff_required
def staff_edit(training_id: int):
    training = services.get_training(training_id)
    return _training_form(training)


def _session_form(formdata=None, values: dict | None = None) -> SessionForm:
    form = SessionForm(formdata=formdata, data=values)
    form.station_id.choices = [(0, _("ステーション以外（下に会場名）"))] + [
        (s.id, s.label) for s in list_stations()]
    return form


def _session_data(form) -> dict:
    return form_data(form, services.SESSION_FIELDS)


@bp.route("/staff/trainings/<int:training_id>", methods=["GET", "POST"])
@staff_required
def staff_training(training_id: int):
    training = services.get_training(training_id)
    form = _session_form(request.form if request.method == "POST" else None)
    if request.method == "POST" and form.validate_on_submit():
        try:
            # Added once, however often the form is sent: a repeat only shows the list.
            added, _first = create_once(form.submission_key.data, "training_session",
                                        lambda: services.add_session(training, _session_data(form),
                                                                     actor=current_user))
        except InvalidInput as exc:
            db.session.rollback()
            add_error(form, exc)
        else:
            if added is not None:
                flash(_("回を追加しました。"), "success")
            return redirect(url_for("trainings.staff_training", training_id=training.id))
    return render_template("trainings/staff_training.html", training=training, form=form)


@bp.route("/staff/trainings/sessions/<int:session_id>/edit", methods=["GET", "POST"])
@staff_required
def staff_session_edit(session_id: int):
    found = _session(session_id)
    if request.method == "GET":
        form = _session_form(values=services.session_form_values(found))
    else:
        form = _session_form(request.form)
    if request.method == "POST" and form.validate_on_submit():
        try:
            changed = services.change_session(found.id, _session_data(form), actor=current_user)
        except (InvalidInput, InvalidState) as exc:
            add_error(form, exc)
        else:
            said = [_("回を変更しました。")]
            if changed.told_of_change:
                said.append(_("日時・会場の変更を、申込者 %(n)d 人にメールでお知らせします（メールのない方には電話でお知らせください）。",
                              n=changed.told_of_change))
            if changed.promoted_now:
                said.append(_("キャンセル待ちの %(n)d 人が繰り上がりました（メールでお知らせします）。",
                              n=changed.promoted_now))
            flash("".join(said), "success")
            return redirect(url_for("trainings.staff_session", session_id=found.id))
    return render_template("trainings/session_form.html", form=form, session=found)


@bp.route("/staff/trainings/sessions/<int:session_id>/cancel", methods=["GET", "POST"])
@staff_required
def staff_session_cancel(session_id: int):
    """Calling off mails everyone: the GET page asks first."""
    found = _session(session_id)
    form = ConfirmForm()
    if request.method == "GET":
        return render_template("trainings/cancel_confirm.html", session=found, form=form,
                               people=services.registrations(found))
    if form.validate_on_submit():
        try:
            told = services.cancel_session(found.id, actor=current_user)
        except InvalidState as exc:
            flash(str(exc), "error")
        else:
            flash(_("この回を中止し、申込者 %(n)d 人にお知らせしました。", n=told), "success")
    return redirect(url_for("trainings.staff_session", session_id=found.id))


@bp.get("/staff/trainings/sessions/<int:session_id>")
@staff_required
def staff_session(session_id: int):
    found = _session(session_id)
    q = search_arg()
    matches = []
    if q.strip():
        matches = supporters.search(supporters.RegistryFilters(q=q, scope=area_scope(current_user)),
                                    page=1, per_page=10).rows
    return render_template("trainings/staff_session.html", session=found, q=q, matches=matches,
                           viewer=Viewer.of(current_user),
                           people=services.registrations(found), form=ConfirmForm(),
                           attendance_form=AttendanceForm(),
                           can_mark=services.attendance_open(found))


@bp.post("/staff/trainings/sessions/<int:session_id>/sign-up")
@staff_required
def staff_sign_up(session_id: int):
    found = _session(session_id)
    supporter_id = form_int("supporter_id")
    if ConfirmForm().validate_on_submit() and supporter_id is not None:
        try:
            supporter = supporters.get_supporter(supporter_id)
            Viewer.of(current_user).require(supporters.area_of(supporter))
            registration = services.sign_up(found.id, supporter, via="staff", actor=current_user)
        except (InvalidInput, InvalidState) as exc:
            flash(str(exc), "error")
        else:
            flash(_("%(name)s さんを申し込みました（%(status)s）。", name=supporter.display_name,
                    status=_("参加確定") if registration.status == "confirmed" else _("キャンセル待ち")),
                  "success")
    return redirect(url_for("trainings.staff_session", session_id=found.id))


@bp.route("/staff/trainings/registrations/<int:registration_id>/cancel", methods=["GET", "POST"])
@staff_required
def staff_cancel(registration_id: int):
    if request.method == "GET":
        return _staff_cancel_confirm(registration_id)
    if ConfirmForm().validate_on_submit():
        try:
            registration = services.cancel(registration_id, actor=current_user)
        except InvalidState as exc:
            flash(str(exc), "error")
        else:
            flash(_("申込みを取り消しました。"), "success")
            return redirect(url_for("trainings.staff_session", session_id=registration.session_id))
    return redirect(url_for("trainings.staff_index"))


def _staff_cancel_confirm(registration_id: int):
    """Cancelling someone's place gives it to the next in line and mails both: ask first."""
    registration = services.get_registration(registration_id)
    found = registration.session
    person = registration.supporter
    lines = [_("%(name)s さんの申込み（%(status)s）を取り消します。", name=person.display_name,
               status=_("参加確定") if registration.status == "confirmed" else _("キャンセル待ち"))]
    if person.email:
        lines.append(_("%(name)s さんに取消しのお知らせをメールでお送りします。", name=person.display_name))
    else:
        lines.append(_("%(name)s さんにはメールアドレスがないので、お電話でお知らせください。",
                       name=person.display_name))
    nxt = services.waitlist(found)[:1] if registration.status == "confirmed" else []
    if nxt:
        lines.append(_("空いた席には、キャンセル待ちの先頭の %(name)s さんが繰り上がり、メールでお知らせします。",
                       name=nxt[0].supporter.display_name))
    return render_template(
        "confirm.html", title=_("申込みを取り消す"), lines=lines,
        warning=_("取り消した申込みは元に戻せません（もう一度申し込むと、キャンセル待ちの最後になります）。"),
        danger=True, button=_("取り消す"),
        action=url_for("trainings.staff_cancel", registration_id=registration.id),
        back=url_for("trainings.staff_session", session_id=found.id))


@bp.post("/staff/trainings/sessions/<int:session_id>/attendance")
@staff_required
def staff_attendance(session_id: int):
    found = _session(session_id)
    if AttendanceForm().validate_on_submit():
        marks = {parse_id(key.split("-", 1)[1]): value for key, value in request.form.items()
                 if key.startswith("attendance-") and parse_id(key.split("-", 1)[1]) is not None}
        try:
            marked = services.record_attendance(found, marks, actor=current_user)
        except (InvalidInput, InvalidState) as exc:
            flash(str(exc), "error")
        else:
            flash(_("出欠を %(n)d 件記録しました。", n=marked), "success")
    return redirect(url_for("trainings.staff_session", session_id=found.id))


@bp.get("/staff/trainings/sessions/<int:session_id>/roster")
@staff_required
def roster(session_id: int):
    found = _session(session_id)
    return render_template("trainings/roster.html", session=found,
                           people=services.roster(found, actor=current_user), viewer=Viewer.of(current_user))
