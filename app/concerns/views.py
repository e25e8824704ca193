"""Concern pages: the report form, the reporter's own list, the staff queue and case page."""
from __future__ import annotations

import functools
from datetime import datetime
from typing import NamedTuple

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_login import current_user
from sqlalchemy.exc import OperationalError

from app import submissions
from app.access import admin_required, staff_required, supporter_required
from app.accounts.services import Viewer, area_scope
from app.concerns import queue, rules, services, statistics
from app.concerns.forms import (
    AnswerForm,
    AssignForm,
    CategoryForm,
    ConcernForm,
    HelpForm,
    LinkForm,
    MessageForm,
    NoteForm,
    ReferralForm,
    ReferralStatusForm,
    StaffConcernForm,
    StatusForm,
)
from app.concerns.models import STATUSES, URGENCIES
from app.concerns.referrals import NEXT as REFERRAL_NEXT
from app.concerns.referrals import referral_problems
from app.errors import InvalidInput, InvalidState
from app.extensions import db, limiter
from app.formatting import TOKYO, bracketed, format_datetime, today_tokyo
from app.forms import OneTimeForm
from app.geography.services import district_choices
from app.i18n import gettext as _
from app.labels import (
    AGENCY_KIND,
    CONCERN_CHANNEL,
    CONCERN_STATUS,
    HELP_KIND,
    HELP_STATUS,
    REFERRAL_CONSENT,
    REFERRAL_METHOD,
    REFERRAL_STATUS,
    URGENCY,
    localized,
)
from app.site import (
    add_error,
    busy,
    form_data,
    form_int,
    fragment_key,
    int_arg,
    is_busy,
    page_arg,
    parse_id,
    public_form_limit,
    remember_list,
    remembered_list,
    search_arg,
    validate_with_rules,
)
from app.spreadsheet import csv_response
from app.submissions import AlreadySubmitted

bp = Blueprint("concerns", __name__)
FIELDS = ("category_id", "body", "district_id", "place", "address", "noticed_on", "urgency",
          "reporter_name", "reporter_email", "reporter_phone", "may_contact", "channel",
          "reported_on", "reported_time")


def _choices(form) -> None:
    form.category_id.choices = [(0, _("選んでください"))] + [
        (c.id, localized(c.name, c.name_en)) for c in services.list_categories(active_only=True)]
    form.district_id.choices = [(0, _("わからない"))] + district_choices()


def _photo(form) -> services.Photo | None:
    upload = form.photo.data
    if upload is None or not getattr(upload, "filename", ""):
        return None
    return services.Photo(data=upload.read(), filename=upload.filename)


def _submit(form, **who):
    """Validate and save; on error, the messages go beside the fields and the input stays.

    A form sent again (a double click, a reload) returns the first report."""
    data = form_data(form, FIELDS)
    photo = _photo(form)
    if not validate_with_rules(form, lambda: services.concern_problems(data, staff="staff" in who)):
        _photo_dropped(form, photo)
        return None
    key = submissions.key_for("concern", data, form.submission_key.data)
    try:
        concern = services.submit_concern(data, photo=photo, submission_key=key, **who)
    except AlreadySubmitted as exc:  # a double click, a reload, Back and send again
        concern = services.get_concern(exc.first.result_id)
    except InvalidInput as exc:
        add_error(form, exc)
        if "photo" in (getattr(exc, "problems", None) or {}):
            form.photo.errors.append(_("お手数ですが、写真をもう一度選んでください。"))
        else:
            _photo_dropped(form, photo)
        return None
    except OperationalError as exc:
        if not is_busy(exc):
            raise
        busy(form)
        _photo_dropped(form, photo)
        return None
    submissions.remember("concern", data, key)
    return concern


def _photo_dropped(form, photo) -> None:
    """A file input cannot be filled in again by the page: say so beside it."""
    if photo is not None and photo.data:
        form.photo.errors.append(_("選んだ写真は保存されていません。お手数ですが、送る前にもう一度選んでください。"))


# --- the report form -----------------------------------------------------------------------

@bp.route("/report", methods=["GET", "POST"])
@limiter.limit(public_form_limit, methods=["POST"])
def report():
    if current_user.is_authenticated and current_user.is_staff:
        return redirect(url_for("concerns.staff_new"))
    form = ConcernForm()
    _choices(form)
    supporter = current_user if current_user.is_authenticated else None
    if request.method == "GET" and supporter is not None:
        form.reporter_name.data = supporter.display_name
        form.reporter_email.data = supporter.email or ""
        form.reporter_phone.data = supporter.phone
        form.district_id.data = supporter.district_id or 0
        form.may_contact.data = True
    if request.method == "POST":
        concern = _submit(form, reporter=supporter._get_current_object() if supporter else None)
        if concern is not None:
            session["reported"] = {"reference": concern.reference,
                                   "urgent": concern.urgency == "urgent",
                                   "receipt": bool(services.receipt_address(concern))}
            return redirect(url_for("concerns.report_thanks"))
    status = 503 if getattr(form, "busy", False) else 200
    return render_template("concerns/report.html", form=form, supporter=supporter), status


@bp.get("/report/thanks")
def report_thanks():
    reported = session.get("reported")
    if not reported:
        return redirect(url_for("concerns.report"))
    return render_template("concerns/report_thanks.html", reported=reported)


# --- the supporter's own reports ----------------------------------------------------------------

@bp.get("/me/reports")
@supporter_required
def my_reports():
    return render_template("concerns/my_reports.html", concerns=services.reports_of(current_user))


@bp.get("/me/reports/<reference>")
@supporter_required
def my_report(reference: str):
    concern = services.report_of(current_user, reference)
    return render_template("concerns/my_report.html", concern=concern,
                           events=services.timeline(concern, for_reporter=True))


# --- staff: the dashboard -------------------------------------------------------------------------

class Chosen(NamedTuple):
    """The dashboard's filters as read from the request."""
    filters: queue.QueueFilters
    form_area: str    # what the form shows chosen (the list's own, after a widened search)
    form_status: str  # "open", "all" or a state
    widened: frozenset[str]  # past the list's own ("state", "area"): a reference number
    # The areas the tiles and figures count (and the unplaced with them): the list's own,
    # also when a reference number looked wider.
    counted: tuple[list[int] | None, bool]


def _filters() -> Chosen:
    args = request.args
    scope = area_scope(current_user)
    my_areas = sorted(scope) if scope is not None else [a.id for a in current_user.areas]
    # A reference number typed in the search box finds its concern whatever its state and
    # area, unless another than the list's own (open ones, in my areas) was chosen: the form
    # sends its choices with every search, the ones it opens on too. The form goes on showing
    # the list's own (the next search is an ordinary one), and the page says it looked wider.
    q = search_arg()
    area = args.get("area", "mine" if my_areas else "all")
    sent_status = args.get("status", "open")
    wide = queue.means_reference(q) and (area in ("mine", "") or sent_status in ("open", ""))
    area_widened = wide and area in ("mine", "")
    if area_widened:
        area = "all"
    if area == "mine" and my_areas:
        area_ids = my_areas
    elif (area_id := parse_id(area)) is not None:  # ASCII digits in range (not "²", 10**20)
        area_ids = [area_id]
    elif area == "none":
        area_ids = []
    elif area != "all" and my_areas:  # one it does not know (an edited address): as it opens
        area, area_ids = "mine", my_areas
    else:
        area, area_ids = "all", None
    form_area = ("mine" if my_areas else "all") if area_widened else area
    # The queue opens on what is still being worked on; "all" shows closed ones too, and
    # anything else it does not know opens it as it opens.
    form_status = sent_status if sent_status == "all" or sent_status in STATUSES else "open"
    state_widened = wide and sent_status in ("open", "")
    status = "all" if state_widened else form_status
    # What the page says it looked in besides the list's own (for an account with no areas
    # of its own, "mine" is every area already).
    widened = frozenset(part for part, more in (("state", state_widened),
                                                ("area", area_widened and bool(my_areas)))
                        if more)
    return Chosen(queue.QueueFilters(
        area_ids=area_ids,
        status="" if status == "all" else status,
        category_id=int_arg("category"),
        assignee=args.get("assignee") if args.get("assignee") in ("me", "none") else "",
        overdue=args.get("overdue") == "1",
        urgency=args.get("urgency") if args.get("urgency") in URGENCIES else "",
        q=q,
        with_unplaced=area == "mine",
    ), form_area, form_status, widened,
        (my_areas, True) if "area" in widened else (area_ids, area == "mine"))


# The list as the staff member last saw it (its filters, search and page), for the way back
# from a concern — also after the forms on its page were sent.
_LIST_KEYS = ("area", "status", "category", "assignee", "overdue", "urgency", "q", "page")


def _remember_list() -> None:
    remember_list("concern_list", _LIST_KEYS)


def _list_url() -> str:
    return remembered_list("concern_list", "concerns.dashboard", _LIST_KEYS)


@bp.get("/staff/concerns")
@staff_required
def dashboard():
    filters, form_area, form_status, widened, (scope, unplaced) = _filters()
    _remember_list()
    page = page_arg()
    per_page = current_app.config["HOTNET_PAGE_SIZE"]
    viewer = Viewer.of(current_user)
    cap = queue.COUNT_CAP
    quick = queue.waiting_counts(scope, viewer, unplaced, matching=filters)
    total = quick["matching"]
    rows, pinned = queue.page_and_pinned(filters, viewer, page=page, per_page=per_page)
    pick_lists = queue.pick_lists()
    my_areas = my_area_choice()
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "concerns/dashboard.html", rows=rows, total=total, page=page,
        pages=max(1, -(-min(total, cap) // per_page)), cap=cap, filters=filters,
        args=args, quick=quick, areas=pick_lists[0],
        figures=functools.cache(lambda: statistics.dashboard_figures(scope)),
        referral_figures=functools.cache(lambda: statistics.referral_figures(scope)),
        scope_key="all" if scope is None else ",".join(map(str, sorted(scope))),
        categories=pick_lists[1],
        # The charts name the areas and categories: cached under their names, a new name
        # shows at once instead of after the cache time.
        names_key=fragment_key(pick_lists),
        # The filters' choices are cached under all they show (the longest part of the page).
        form_area=form_area, form_status=form_status, widened=widened,
        filters_key=fragment_key(pick_lists, form_area, form_status, filters.category_id,
                                 filters.urgency, filters.assignee, filters.overdue, my_areas),
        is_overdue=functools.partial(rules.is_overdue, before=rules.overdue_before()), viewer=viewer, my_areas=my_areas,
        pinned=pinned,
    )


def my_area_choice() -> bool:
    """Whether "my areas" is a choice (the account serves some areas, or covers some)."""
    scope = area_scope(current_user)
    return bool(scope) or bool(current_user.areas)


@bp.get("/staff/concerns/export.csv")
@staff_required
def export_csv():
    filters = _filters().filters
    me = Viewer.of(current_user)
    queue.record_export(filters, queue.count_export(filters, me), actor=current_user)
    headers = [_("受付番号"), _("受付日時"), _("分類"), _("急ぎ具合"), _("状態"), _("地区"),
               _("場所や目印"), _("住所"), _("気になったこと"), _("担当者"), _("つなぎ先"),
               _("受付の方法"), _("報告者"), _("報告者の連絡先"), _("連絡してよい")]

    def rows():
        for c in queue.iter_export(filters, me):
            yield [
                c.reference, format_datetime(c.created_at), c.category.name, URGENCY[c.urgency],
                CONCERN_STATUS[c.status], c.district.name if c.district else "", c.place,
                c.address, c.body, c.assignee.name if c.assignee else "", c.connected_to,
                CONCERN_CHANNEL.get(c.channel, c.channel), c.reporter_name,
                " ".join(x for x in (c.reporter_email, c.reporter_phone) if x),
                _("はい") if c.may_contact else _("いいえ")]

    return csv_response(headers, rows(), "hotnet-concerns.csv")


# --- staff: taking a report on someone's behalf ----------------------------------------------------

@bp.route("/staff/concerns/new", methods=["GET", "POST"])
@staff_required
def staff_new():
    form = StaffConcernForm()
    _choices(form)
    if request.method == "GET":  # the call is usually being taken now; staff may correct it
        now = datetime.now(TOKYO)
        form.reported_on.data, form.reported_time.data = now.date(), now.time().replace(
            second=0, microsecond=0)
    if request.method == "POST":
        concern = _submit(form, staff=current_user._get_current_object())
        if concern is not None:
            flash(_("受付番号 %(ref)s で受け付けました。", ref=concern.reference), "success")
            return redirect(url_for("concerns.staff_detail", concern_id=concern.id))
    return render_template("concerns/staff_new.html", form=form)


# --- staff: one concern ------------------------------------------------------------------------------

def _get(concern_id: int):
    """A concern the signed-in staff member may work on (their areas), else 403/404."""
    concern = services.get_concern(concern_id)
    Viewer.of(current_user).require(concern.area_id)
    return concern


def _detail(concern, status_code: int = 200, **forms):
    forms.setdefault("status_form", StatusForm(formdata=None))
    forms.setdefault("assign_form", AssignForm(formdata=None, assignee_id=concern.assignee_id or 0))
    forms.setdefault("note_form", NoteForm(formdata=None))
    forms.setdefault("message_form", MessageForm(formdata=None))
    forms.setdefault("link_form", LinkForm(formdata=None))
    forms["referral_form"] = _referral_form(concern, forms.get("referral_form"))
    forms["help_form"] = _help_form(forms.get("help_form"))
    need = forms["help_form"].need.data or (request.args.get("need") or "")[:20]
    forms["help_form"].need.data = need
    helpers = services.suggest_helpers(concern, need) if need else []
    forms["help_form"].supporter_id.choices = [(s.id, s.display_name) for s in helpers]
    next_statuses = rules.TRANSITIONS[concern.status]
    forms["status_form"].status.choices = [(s, CONCERN_STATUS[s]) for s in next_statuses]
    if len(next_statuses) == 1:  # only a way back (a finished one reopened): its note says why
        forms["status_form"].note.label.text = _("戻す理由（任意）")
    forms["assign_form"].assignee_id.choices = [(0, _("担当者なし"))] + [
        (s.id, s.name) for s in services.assignable_staff(concern)]
    linked = services.related(concern)
    return render_template(
        "concerns/staff_detail.html", concern=concern, events=services.timeline(concern),
        list_url=_list_url(), can_connect=services.can_connect(concern),
        related=linked, duplicates=services.possible_duplicates(concern, linked=linked),
        overdue=rules.is_overdue(concern), referrals=services.referrals_of(concern),
        helpers=helpers, help_requests=services.requests_of_concern(concern),
        referral_status_forms={r.id: _referral_status_form(r, forms.get("referral_status_form")
                                                            if forms.get("referral_id") == r.id
                                                            else None)
                               for r in services.referrals_of(concern)},
        **forms), status_code


@bp.get("/staff/concerns/<int:concern_id>")
@staff_required
def staff_detail(concern_id: int):
    concern = services.get_concern(concern_id)
    if not Viewer.of(current_user).sees(concern.area_id):
        # Colleagues may see that it exists and how far it has come, not what it says.
        return render_template("concerns/staff_summary.html", concern=concern,
                               list_url=_list_url())
    return _detail(services.view_concern(concern_id, actor=current_user))


def _act(concern_id: int, form_name: str, form, action, done: str, *, anchor: str = "#timeline",
         problems=None):
    """One action on a concern's page: check the form (and the service's own rules, when
    `problems` gives them), act, and redirect — or show the page again with what was typed."""
    concern = _get(concern_id)
    if form_name == "assign_form":
        form.assignee_id.choices = [(0, "")] + [(s.id, s.name) for s in services.assignable_staff(concern)]
    if form_name == "status_form":
        form.status.choices = [(s, CONCERN_STATUS[s]) for s in STATUSES]
    if form_name == "referral_form":
        form = _referral_form(concern, form)
    valid = validate_with_rules(form, lambda: problems(form)) if problems else \
        form.validate_on_submit()
    if valid:
        try:
            if isinstance(form, OneTimeForm):  # a note, a message, a referral, a request
                submissions.claim(form.submission_key.data, form_name)
            action(concern, form)
        except AlreadySubmitted:  # a double click or a reload: the first one is on the page
            db.session.rollback()
        except (InvalidInput, InvalidState) as exc:
            db.session.rollback()
            add_error(form, exc)
            return _detail(concern, 400, **{form_name: form})
        flash(done, "success" + anchor)  # shown where the page opens (flashes_at), not above it
        return redirect(url_for("concerns.staff_detail", concern_id=concern.id) + anchor)
    return _detail(concern, 400, **{form_name: form})


@bp.post("/staff/concerns/<int:concern_id>/status")
@staff_required
def change_status(concern_id: int):
    def change(concern, form):
        try:
            services.change_status(concern, form.status.data,
                                   duplicate_of=form.duplicate_of.data or "",
                                   note=form.note.data or "", actor=current_user,
                                   confirmed=form.confirmed.data == "1")
        except services.OpenReferrals as exc:
            raise _AskFirst(concern, form, exc.referrals) from exc

    try:
        return _act(concern_id, "status_form", StatusForm(), change, _("状態を変更しました。"))
    except _AskFirst as ask:
        # Closing with referrals still open: say which, and ask (also without JavaScript).
        db.session.rollback()
        return render_template("concerns/close_confirm.html", concern=ask.concern,
                               form=ask.form, referrals=ask.referrals)


class _AskFirst(Exception):
    def __init__(self, concern, form, referrals):
        super().__init__("ask first")
        self.concern, self.form, self.referrals = concern, form, referrals


@bp.post("/staff/concerns/<int:concern_id>/assign")
@staff_required
def assign(concern_id: int):
    return _act(concern_id, "assign_form", AssignForm(),
                lambda c, f: services.assign(c, f.assignee_id.data or None, actor=current_user),
                _("担当者を変更しました。"))


@bp.post("/staff/concerns/<int:concern_id>/note")
@staff_required
def add_note(concern_id: int):
    return _act(concern_id, "note_form", NoteForm(),
                lambda c, f: services.add_note(c, f.body.data, actor=current_user), _("内部メモを残しました。"))


@bp.post("/staff/concerns/<int:concern_id>/message")
@staff_required
def send_message(concern_id: int):
    return _act(concern_id, "message_form", MessageForm(),
                lambda c, f: services.send_message(c, f.body.data, actor=current_user),
                _("報告者へのメッセージを残しました。"))


@bp.post("/staff/concerns/<int:concern_id>/link")
@staff_required
def link(concern_id: int):
    return _act(concern_id, "link_form", LinkForm(),
                lambda c, f: services.link_concerns(c, f.reference.data, actor=current_user),
                _("関連づけました。"))


@bp.post("/staff/concerns/<int:concern_id>/unlink/<int:other_id>")
@staff_required
def unlink(concern_id: int, other_id: int):
    concern = _get(concern_id)
    form = NoteForm()  # only for its CSRF check
    if form.validate_on_submit():
        services.unlink_concerns(concern, other_id)
        flash(_("関連づけを外しました。"), "success")
    return redirect(url_for("concerns.staff_detail", concern_id=concern.id))


@bp.get("/staff/concerns/<int:concern_id>/photo")
@staff_required
def photo(concern_id: int):
    concern = _get(concern_id)
    if not concern.photo:
        abort(404)
    response = send_from_directory(services.photo_folder(), concern.photo, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- admin: categories --------------------------------------------------------------------------

@bp.route("/admin/concern-categories", methods=["GET", "POST"])
@admin_required
def categories():
    form = CategoryForm()
    if request.method == "POST":
        category_id = form_int("category_id")
        try:
            if not form.validate_on_submit():
                raise InvalidInput(_("入力内容を確認してください。"))
            if category_id is not None:
                category = services.get_category(category_id)
                services.update_category(category, form.name.data or "", form.name_en.data or "",
                                         bool(form.active.data), actor=current_user)
                flash(_("分類を変更しました。"), "success")
            else:
                services.add_category(form.name.data or "", form.name_en.data or "", actor=current_user)
                flash(_("分類を追加しました。"), "success")
        except InvalidInput as exc:
            add_error(form, exc)
        else:
            return redirect(url_for("concerns.categories"))
    return render_template("concerns/categories.html", form=form,
                           categories=services.list_categories())



# --- staff: referrals (つなぎ) -----------------------------------------------------------------

def _referral_form(concern, form: ReferralForm | None = None) -> ReferralForm:
    """Agencies suggested for the concern (its district, its category) first, then the rest."""
    from app.partners.services import list_agencies

    form = form or ReferralForm(formdata=None, referred_on=today_tokyo())
    suggested = services.suggested_agencies(concern)
    rest = [a for a in list_agencies(active_only=True) if a not in suggested]
    form.agency_id.choices = [(0, _("選んでください"))] + [
        (a.id, f"★ {a.name}{bracketed(AGENCY_KIND[a.kind])}") for a in suggested] + [
        (a.id, f"{a.name}{bracketed(AGENCY_KIND[a.kind])}") for a in rest]
    form.method.choices = [(k, str(v)) for k, v in REFERRAL_METHOD.items()]
    form.consent.choices = [(k, str(v)) for k, v in REFERRAL_CONSENT.items()]
    return form


def _referral_status_form(referral, form: ReferralStatusForm | None = None) -> ReferralStatusForm:
    form = form or ReferralStatusForm(formdata=None, on=today_tokyo(),
                                      follow_up_on=referral.follow_up_on)
    form.status.choices = [(s, str(REFERRAL_STATUS[s])) for s in REFERRAL_NEXT[referral.status]]
    return form


def _referral_data(form: ReferralForm) -> dict:
    return {"agency_id": form.agency_id.data or None, "referred_on": form.referred_on.data,
            "method": form.method.data, "consent": form.consent.data,
            "passed_on": form.passed_on.data, "follow_up_on": form.follow_up_on.data}


@bp.post("/staff/concerns/<int:concern_id>/referrals")
@staff_required
def add_referral(concern_id: int):
    return _act(concern_id, "referral_form", ReferralForm(),
                lambda c, f: services.refer(c, _referral_data(f), actor=current_user,
                                            connect=f.connect.data),
                _("つなぎを記録しました。"), anchor="#referrals",
                problems=lambda f: referral_problems(_referral_data(f)))


@bp.post("/staff/concerns/<int:concern_id>/referrals/<int:referral_id>")
@staff_required
def update_referral(concern_id: int, referral_id: int):
    concern = _get(concern_id)
    referral = services.get_referral(concern, referral_id)
    form = _referral_status_form(referral, ReferralStatusForm())
    back = request.form.get("back") == "follow_ups"
    if form.validate_on_submit():
        try:
            services.update_referral(referral, form.status.data, on=form.on.data,
                                     follow_up_on=form.follow_up_on.data,
                                     note=form.note.data or "", actor=current_user)
        except (InvalidInput, InvalidState) as exc:
            db.session.rollback()
            add_error(form, exc)
        else:
            flash(_("つなぎの経過を記録しました（%(agency)s: %(status)s）。",
                    agency=referral.agency.name, status=REFERRAL_STATUS[referral.status]),
                  "success" if back else "success#referrals")
            if back:
                return redirect(url_for("concerns.follow_ups"))
            return redirect(url_for("concerns.staff_detail", concern_id=concern.id) + "#referrals")
    return _detail(concern, 400, referral_status_form=form, referral_id=referral.id)


@bp.get("/staff/concerns/<int:concern_id>/referrals/<int:referral_id>/sheet")
@staff_required
def referral_sheet(concern_id: int, referral_id: int):
    concern = _get(concern_id)
    referral = services.get_referral(concern, referral_id)
    content = services.sheet(referral, actor=current_user)
    return render_template("concerns/referral_sheet.html", concern=concern, referral=referral,
                           content=content, today=today_tokyo())


@bp.get("/staff/referrals")
@staff_required
def follow_ups():
    """Open referrals in my areas, those due for a follow-up call first."""
    referrals = services.follow_ups(area_scope(current_user))
    today = today_tokyo()
    return render_template("concerns/follow_ups.html", referrals=referrals, today=today,
                           forms={r.id: _referral_status_form(r) for r in referrals})


# --- requests for help (協力依頼) ----------------------------------------------------------------

def _help_form(form: HelpForm | None = None) -> HelpForm:
    form = form or HelpForm(formdata=None)
    form.need.choices = [("", _("選んでください"))] + [(k, str(v)) for k, v in HELP_KIND.items()]
    return form


@bp.post("/staff/concerns/<int:concern_id>/help")
@staff_required
def ask_for_help(concern_id: int):
    return _act(concern_id, "help_form", _help_form(HelpForm()),
                lambda c, f: services.ask_for_help(c, f.supporter_id.data or 0, f.need.data or "",
                                                   f.message.data or "", actor=current_user),
                _("協力をお願いしました（メールでお知らせします）。"), anchor="#help")


@bp.post("/me/help/<int:request_id>")
@supporter_required
def answer_mine(request_id: int):
    help_request = services.get_own_request(current_user, request_id)
    form = AnswerForm()
    if form.validate_on_submit() and form.answer.data in ("accept", "decline"):
        try:
            services.answer(help_request, form.answer.data == "accept",
                            actor=current_user._get_current_object())
        except InvalidState as exc:
            flash(str(exc), "error")
        else:
            flash(_("お返事を伝えました。ありがとうございます。"), "success")
    return redirect(url_for("supporters.me") + "#help-requests")


@bp.route("/help/<token>", methods=["GET", "POST"])
@limiter.limit(public_form_limit, methods=["POST"])
def help_answer(token: str):
    """Answer from the mailed link, without signing in: the link itself identifies the
    request. A GET never answers."""
    help_request = services.request_for_token(token)
    form = AnswerForm()
    if request.method == "POST" and form.validate_on_submit() and \
            form.answer.data in ("accept", "decline"):
        try:
            services.answer(help_request, form.answer.data == "accept",
                            actor=help_request.supporter)
        except InvalidState as exc:
            flash(str(exc), "error")
        else:
            flash(_("お返事を伝えました。ありがとうございます。"), "success")
        return redirect(url_for("concerns.help_answer", token=token))
    return render_template("concerns/help_answer.html", help_request=help_request, form=form,
                           token=token)


@bp.get("/staff/concerns/referrals.csv")
@staff_required
def referral_figures_csv():
    """The referral figures of the dashboard as a table (counts only, small ones as ranges)."""
    f = statistics.referral_figures(area_scope(current_user))
    header = [_("つなぎ先の種類")] + f.areas + [_("計")]
    rows = [[str(AGENCY_KIND[k])] + [str(f.cells[(k, a)]) for a in f.areas] + [str(f.kind_total(k))]
            for k in f.kinds]
    rows.append([_("計")] + [str(f.area_total(a)) for a in f.areas] + [str(f.grand_total)])
    rows.append([])
    rows += [[_("%(month)s のつなぎ", month=month), str(n)] for month, n in f.by_month.items()]
    rows += [[str(REFERRAL_STATUS[s]), str(n)] for s, n in f.outcomes.items()]
    rows.append([_("受理までの日数（中央値）"),
                 "" if f.days_to_accept is None else f"{f.days_to_accept:g}"])
    rows += [[_("協力のお願い: %(status)s", status=HELP_STATUS[s]), str(n)]
             for s, n in f.help_answers.items()]
    services.record_figures_export(f.grand_total, actor=current_user)
    return csv_response(header, rows, "referrals.csv")
