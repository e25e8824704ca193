"""Registry pages: public applications, the supporter's own page, and the staff registry."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy.exc import OperationalError

from app import submissions
from app.access import admin_required, staff_required, supporter_required
from app.accounts.services import Viewer, area_scope
from app.errors import InvalidInput, InvalidState, LinkInvalid, NotFound
from app.extensions import db, limiter
from app.forms import ConfirmForm
from app.geography.services import district_choices, list_districts
from app.i18n import gettext as _
from app.labels import localized
from app.site import (
    add_error,
    busy,
    busy_message,
    form_data,
    form_int,
    form_when_limited,
    fragment_key,
    int_arg,
    is_busy,
    limited_form,
    page_arg,
    public_form_limit,
    remember_list,
    remembered_list,
    search_arg,
    sign_in_account_key,
    sign_in_account_limit,
    sign_in_address_limit,
    validate_with_rules,
)
from app.spreadsheet import csv_response
from app.submissions import AlreadySubmitted, create_once
from app.supporters import csvio, sections, services, signin
from app.supporters.forms import (
    ApplicationForm,
    BusinessApplicationForm,
    CategoryForm,
    EmailConfirmForm,
    ImportForm,
    LinkRequestForm,
    ProfileForm,
    SupporterForm,
)
from app.supporters.models import DELIVERIES, KINDS, STATUSES, BusinessCategory, Supporter
from app.text import email_text

bp = Blueprint("supporters", __name__)


def _choices(form, *, unknown_label: str) -> None:
    if hasattr(form, "district_id"):
        form.district_id.choices = [(0, unknown_label)] + district_choices()
    if hasattr(form, "business_category_id"):
        form.business_category_id.choices = [(0, _("選んでください"))] + [
            (c.id, localized(c.name, c.name_en))
            for c in services.list_categories()]


def _get(supporter_id: int):
    """A record the signed-in staff member may see (their areas), else 403/404."""
    supporter = services.get_supporter(supporter_id)
    Viewer.of(current_user).require(services.area_of(supporter))
    return supporter


# --- public applications -------------------------------------------------------------------

@bp.route("/apply", methods=["GET", "POST"])
@limiter.limit(public_form_limit, methods=["POST"])
def apply():
    form = ApplicationForm()
    _choices(form, unknown_label=_("わからない・選ばない"))
    return _apply(form, "person", "supporters/apply.html")


@bp.route("/apply/business", methods=["GET", "POST"])
@limiter.limit(public_form_limit, methods=["POST"])
def apply_business():
    form = BusinessApplicationForm()
    _choices(form, unknown_label=_("わからない・選ばない"))
    return _apply(form, "business", "supporters/apply_business.html")


def _apply(form, kind: str, template: str):
    if request.method == "POST":
        data = dict(form_data(form, services.EDITABLE), kind=kind)
        if validate_with_rules(form, lambda: services.application_problems(data)):
            key = submissions.key_for("application", data, form.submission_key.data)
            try:
                services.apply(data, key)
                submissions.remember("application", data, key)
                session["mobile_notice"] = services.is_mobile_carrier(data.get("email"))
            except AlreadySubmitted:
                return redirect(url_for("supporters.apply_thanks"))  # the first one stands
            except InvalidInput as exc:
                add_error(form, exc)
            except OperationalError as exc:
                if not is_busy(exc):
                    raise
                busy(form)
                return render_template(template, form=form), 503
            else:
                return redirect(url_for("supporters.apply_thanks"))
    return render_template(template, form=form)


@bp.get("/apply/thanks")
def apply_thanks():
    return render_template("supporters/apply_thanks.html",
                           mobile=session.get("mobile_notice", False),
                           sender_domain=services.sender_domain())


@bp.get("/privacy")
def privacy():
    return render_template("supporters/privacy.html")


# --- signing in with a mailed link --------------------------------------------------------------

@bp.route("/login/link", methods=["GET", "POST"])
@limiter.limit(sign_in_account_limit, key_func=sign_in_account_key, methods=["POST"])
@limiter.limit(sign_in_address_limit, methods=["POST"])
@form_when_limited(lambda: render_template("accounts/link_request.html",
                                           form=limited_form(LinkRequestForm())))
def request_link():
    form = LinkRequestForm()
    if form.validate_on_submit():
        # The same answer and the same work whether or not the address is registered.
        signin.request_login_link(form.email.data)
        session["link_sent_to"] = email_text(form.email.data)[:254]  # where the link went
        return redirect(url_for("supporters.link_sent"))
    return render_template("accounts/link_request.html", form=form)


@bp.get("/login/link/sent")
def link_sent():
    email = session.get("link_sent_to")
    if not email:
        return redirect(url_for("supporters.request_link"))
    return render_template("accounts/link_sent.html", email=email)


@bp.route("/login/link/<token>", methods=["GET", "POST"])
@limiter.limit(sign_in_address_limit, methods=["POST"])
def link_signin(token: str):
    """GET only asks for a click, so that mail scanners opening the link do not use it up."""
    form = ConfirmForm()
    try:
        if request.method == "POST" and form.validate_on_submit():
            supporter = signin.consume_login_link(token)
            logout_user()
            login_user(supporter)
            flash(_("ログインしました。"), "success")
            if supporter.email_held_at is not None:  # mail to it bounced: ask first
                return redirect(url_for("supporters.confirm_email"))
            return redirect(url_for("supporters.me"))
        signin.check_login_link(token)
    except LinkInvalid as exc:
        return render_template("accounts/link_invalid.html", reason=exc.reason,
                               form=LinkRequestForm()), 410
    return render_template("accounts/link_confirm.html", form=form)


# --- the supporter's own page ------------------------------------------------------------------

@bp.route("/me", methods=["GET", "POST"])
@supporter_required
def me():
    form = ProfileForm(obj=current_user)
    _choices(form, unknown_label=_("わからない・選ばない"))
    if request.method == "GET":
        form.district_id.data = current_user.district_id or 0
    if form.validate_on_submit():
        try:
            changes = services.update_supporter(current_user, form_data(form, services.SELF_EDITABLE),
                                                fields=services.SELF_EDITABLE, actor=current_user)
        except (InvalidInput, InvalidState) as exc:
            add_error(form, exc)
        else:
            flash(_("変更を保存しました。") if changes else _("変更はありませんでした。"), "success")
            return redirect(url_for("supporters.me"))
    return render_template("supporters/me.html", form=form, supporter=current_user,
                           sections=sections.compose(sections.ME, current_user),
                           mobile=services.is_mobile_carrier(current_user.email),
                           sender_domain=services.sender_domain())


@bp.route("/me/email", methods=["GET", "POST"])
@supporter_required
def confirm_email():
    """Mail to the supporter's address bounced: they confirm it (it works again: they signed
    in with a link sent to it) or give a new one, and choose how to get the newsletter."""
    form = EmailConfirmForm(obj=current_user)
    if request.method == "GET":
        form.delivery.data = "email" if current_user.delivery in ("post", "none") and \
            current_user.email_held_at else current_user.delivery
    if form.validate_on_submit():
        try:
            services.confirm_email(current_user._get_current_object(), form.email.data or "",
                                   form.delivery.data, actor=current_user)
        except (InvalidInput, InvalidState) as exc:
            add_error(form, exc)
        else:
            flash(_("メールアドレスを確認しました。ありがとうございます。"), "success")
            return redirect(url_for("supporters.me"))
    return render_template("supporters/confirm_email.html", form=form, supporter=current_user,
                           mobile=services.is_mobile_carrier(current_user.email),
                           sender_domain=services.sender_domain())


@bp.route("/me/withdraw", methods=["GET", "POST"])
@supporter_required
def me_withdraw():
    form = ConfirmForm()
    if form.validate_on_submit():
        supporter = current_user._get_current_object()
        logout_user()
        services.withdraw(supporter, actor=current_user)
        session["withdrawn"] = True
        return redirect(url_for("supporters.withdrawn"))
    return render_template("supporters/withdraw_confirm.html", form=form, supporter=current_user,
                           own=True)


@bp.get("/me/withdrawn")
def withdrawn():
    if not session.pop("withdrawn", False):
        return redirect(url_for("site.home"))
    return render_template("supporters/withdrawn.html")


# --- staff registry ---------------------------------------------------------------------------

def _filters() -> services.RegistryFilters:
    args = request.args
    return services.RegistryFilters(
        q=search_arg(),
        area_id=int_arg("area"),
        district_id=int_arg("district"),
        kind=args.get("kind") if args.get("kind") in KINDS else "",
        status=args.get("status") if args.get("status") in STATUSES else "",
        delivery=args.get("delivery") if args.get("delivery") in DELIVERIES else "",
        category_id=int_arg("category"),
        station_id=int_arg("station"),
        scope=area_scope(current_user),
        sort=args.get("sort") if args.get("sort") in services.SORTS else "kana",
        descending=args.get("desc") == "1",
    )


# The registry as the staff member last saw it, for 「名簿に戻る」 from a supporter's page.
_LIST_KEYS = ("q", "station", "area", "district", "kind", "status", "delivery", "category",
              "sort", "desc", "page")


@bp.get("/staff/supporters")
@staff_required
def staff_list():
    remember_list("supporter_list", _LIST_KEYS)
    filters = _filters()
    scope = filters.scope
    places = list_districts()
    districts = [d for d in places if scope is None or d.area_id in scope]
    areas = list({d.area.id: d.area for d in districts}.values())
    stations = list({a.station_id: a.station for a in areas}.values())
    page = services.search(filters, page=page_arg(),
                           per_page=current_app.config["HOTNET_PAGE_SIZE"], areas=areas)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    # The district list follows the chosen area or station (the page reloads on 絞り込む).
    shown = [d for d in districts
             if (not filters.area_id or d.area_id == filters.area_id)
             and (not filters.station_id or d.area.station_id == filters.station_id)]
    categories = services.category_choices()
    on_page = {row.district_id for row in page.rows}
    return render_template(
        "supporters/staff_list.html", page=page, filters=filters, args=args,
        areas=areas, districts=shown, stations=stations, categories=categories,
        contradiction=filters.contradiction(), sorts=services.SORTS,
        district_names={d.id: d.label for d in places if d.id in on_page},
        # The filters' panel is cached (the longest part of the page, the same for most
        # searches) under all that it shows: the places, the categories, what is chosen.
        panel_key=fragment_key(
            [(p.id, p.name, p.name_en) for p in [*stations, *areas, *shown]], categories,
            [filters.station_id, filters.area_id, filters.district_id, filters.kind,
             filters.status, filters.delivery, filters.category_id, filters.sort,
             filters.descending]),
    )


PRINT_LIMIT = 5000


@bp.get("/staff/supporters/print")
@staff_required
def print_list():
    """The whole filtered list on A4 (not just one page), for a meeting or a phone round.
    Printing personal data is written to the audit log like an export."""
    filters = _filters()
    total = services.count(filters)
    csvio.record_export(filters, min(total, PRINT_LIMIT), action="supporter.print", actor=current_user)
    rows = []
    for n, supporter in enumerate(services.iter_filtered(filters)):
        if n >= PRINT_LIMIT:
            break
        rows.append(supporter)
    return render_template("supporters/print_list.html", rows=rows, total=total,
                           limit=PRINT_LIMIT, filters=filters)


@bp.get("/staff/supporters/export.csv")
@staff_required
def export_csv():
    filters = _filters()
    csvio.record_export(filters, services.count(filters), actor=current_user)
    return csv_response(csvio.export_header(), csvio.export_rows(filters),
                        "hotnet-supporters.csv")


@bp.route("/staff/supporters/new", methods=["GET", "POST"])
@staff_required
def staff_new():
    form = SupporterForm()
    _choices(form, unknown_label=_("未設定"))
    if form.validate_on_submit():
        try:
            # Once, however often the form is sent (a double click): a repeat shows the first.
            supporter, first = create_once(form.submission_key.data, "supporter", lambda: (
                services.create_supporter(form_data(form, services.EDITABLE), actor=current_user)))
        except InvalidInput as exc:
            db.session.rollback()
            add_error(form, exc)
        else:
            if supporter is None:  # a repeat: the first one's page, if the user may see it
                first = db.session.get(Supporter, first) if first else None
                return redirect(url_for("supporters.staff_detail", supporter_id=first.id)
                                if first and _sees(first) else url_for("supporters.staff_list"))
            return _saved(supporter, _("推進員を登録しました。"))
    return render_template("supporters/staff_form.html", form=form, supporter=None)


def _sees(supporter) -> bool:
    """Whether the signed-in staff member may see this supporter's record (by its area)."""
    return Viewer.of(current_user).sees(services.area_of(supporter))


def _saved(supporter, done: str):
    """After saving a supporter: their page, or — placed in a district outside the areas the
    staff member serves (handed over to that area) — the list, saying so: the page would
    only say that they may not see it."""
    if _sees(supporter):
        flash(done, "success")
        return redirect(url_for("supporters.staff_detail", supporter_id=supporter.id))
    flash(_("%(done)s「%(name)s」は%(area)sの地区のため、これからはその圏域の担当者が扱います（あなたの担当の圏域の外なので、名簿には出ません）。",
            done=done, name=supporter.display_name, area=supporter.district.area.label),
          "success")
    return redirect(url_for("supporters.staff_list"))


@bp.get("/staff/supporters/<int:supporter_id>")
@staff_required
def staff_detail(supporter_id: int):
    _get(supporter_id)
    supporter = services.view_supporter(supporter_id, actor=current_user)
    return render_template("supporters/staff_detail.html", supporter=supporter,
                           list_url=remembered_list("supporter_list", "supporters.staff_list",
                                                    _LIST_KEYS, anchor="results"),
                           history=services.history(supporter),
                           sections=sections.compose(sections.STAFF, supporter),
                           duplicates=services.possible_duplicates(
                               supporter, area_scope(current_user)),
                           form=ConfirmForm(), mobile=services.is_mobile_carrier(supporter.email),
                           sender_domain=services.sender_domain())


@bp.route("/staff/supporters/<int:supporter_id>/edit", methods=["GET", "POST"])
@staff_required
def staff_edit(supporter_id: int):
    supporter = _get(supporter_id)
    if supporter.status in services.ERASED_STATUSES:
        abort(404)
    form = SupporterForm(obj=supporter)
    _choices(form, unknown_label=_("未設定"))
    if request.method == "GET":
        form.district_id.data = supporter.district_id or 0
        form.business_category_id.data = supporter.business_category_id or 0
    if supporter.status not in ("applied", "active", "paused"):
        form.status.choices = [(supporter.status, supporter.status)]
    if form.validate_on_submit():
        try:
            changes = services.update_supporter(supporter, form_data(form, services.EDITABLE), actor=current_user)
        except (InvalidInput, InvalidState) as exc:
            add_error(form, exc)
        else:
            return _saved(supporter, _("変更を保存しました。") if changes
                          else _("変更はありませんでした。"))
    return render_template("supporters/staff_form.html", form=form, supporter=supporter)


@bp.get("/staff/supporters/<int:supporter_id>/decline")
@staff_required
def staff_decline_confirm(supporter_id: int):
    """Declining erases what the applicant gave us: ask first."""
    supporter = _get(supporter_id)
    if supporter.status != "applied":
        return redirect(url_for("supporters.staff_detail", supporter_id=supporter.id))
    lines = [_("%(name)s さんのお申込みを見送ります。", name=supporter.display_name),
             _("お申込みの個人情報（氏名、ふりがな、連絡先、住所、メモ、変更履歴の内容）を消去します。残るのは種別・地区・日付だけです。")]
    if supporter.email:
        lines.append(_("%(email)s に見送りのお知らせをメールでお送りします。", email=supporter.email))
    return render_template(
        "confirm.html", title=_("お申込みを見送る"), lines=lines,
        warning=_("消去した個人情報は元に戻せません。"), danger=True,
        action=url_for("supporters.staff_decide", supporter_id=supporter.id, action="decline"),
        button=_("見送って個人情報を消去する"),
        back=url_for("supporters.staff_detail", supporter_id=supporter.id))


@bp.post("/staff/supporters/<int:supporter_id>/<any(approve, decline):action>")
@staff_required
def staff_decide(supporter_id: int, action: str):
    supporter = _get(supporter_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        if action == "approve":
            services.approve(supporter, actor=current_user)
            flash(_("承認しました。メールアドレスのある方には通知をお送りします。"), "success")
        else:
            services.decline(supporter, actor=current_user)
            flash(_("見送りにしました。お申込みの個人情報は消去しました。"), "success")
    except InvalidState as exc:
        flash(str(exc), "error")
    return redirect(url_for("supporters.staff_detail", supporter_id=supporter.id))


@bp.route("/staff/supporters/<int:supporter_id>/withdraw", methods=["GET", "POST"])
@staff_required
def staff_withdraw(supporter_id: int):
    supporter = _get(supporter_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            services.withdraw(supporter, actor=current_user)
        except InvalidState as exc:
            flash(str(exc), "error")
        else:
            flash(_("退会の手続きをし、個人情報を消去しました。"), "success")
        return redirect(url_for("supporters.staff_detail", supporter_id=supporter.id))
    return render_template("supporters/withdraw_confirm.html", form=form, supporter=supporter,
                           own=False)


@bp.route("/staff/supporters/import", methods=["GET", "POST"])
@staff_required
def import_upload():
    form = ImportForm()
    if form.validate_on_submit():
        upload = form.file.data
        if not upload or not upload.filename:
            form.file.errors = [_("CSVファイルを選んでください。")]
        else:
            try:
                pending = csvio.stage(upload.stream, upload.filename, current_user.id)
            except InvalidInput as exc:
                add_error(form, exc)
            else:
                return redirect(url_for("supporters.import_review", import_id=pending.id))
    return render_template("supporters/import_upload.html", form=form, columns=csvio.COLUMNS), \
        400 if form.errors else 200


def _import_gone(endpoint: str):
    flash(_("この取込みはすでに終わっているか、取り消されています。"), "error")
    return redirect(url_for(endpoint))


@bp.get("/staff/supporters/import/<int:import_id>")
@staff_required
def import_review(import_id: int):
    """The dry run of a staged file: what will be imported (a preview) and what will not."""
    try:
        pending = csvio.get_pending(import_id, actor=current_user)
    except NotFound:
        return _import_gone("supporters.import_upload")
    return render_template("supporters/import_review.html", pending=pending,
                           result=csvio.review(pending, actor=current_user), form=ConfirmForm(),
                           token=csvio.import_token(pending),
                           encoding=csvio.ENCODING_NAMES.get(pending.encoding, pending.encoding),
                           sender_domain=services.sender_domain(),
                           districts={d.id: d.label for d in list_districts()})


@bp.post("/staff/supporters/import/<int:import_id>")
@staff_required
def import_decide(import_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        pending = csvio.get_pending(import_id, actor=current_user,
                                    token=request.form.get("import_token", "")[:64])
    except NotFound:
        return _import_gone("supporters.import_upload")
    if request.form.get("decision") == "import":
        checked = (pending.summary or {}).get("ok", 0)  # the rows the review offered
        try:
            count = csvio.commit_import(pending, actor=current_user)
        except NotFound:  # the same button twice: the first request imported it
            return _import_gone("supporters.staff_list")
        except OperationalError as exc:
            if not is_busy(exc):
                raise
            db.session.rollback()
            flash(busy_message(), "error")
            return redirect(url_for("supporters.import_review", import_id=import_id))
        flash(_("%(n)d件を取り込みました。", n=count), "success")
        if count < checked:  # registered since the review (another file, a colleague)
            flash(_("%(n)d件は、確認のあとに別の取込みや入力ですでに登録されていたため、取り込みませんでした。",
                    n=checked - count), "notice")
        return redirect(url_for("supporters.staff_list"))
    csvio.discard_import(pending)
    flash(_("取込みを取り消しました。何も登録していません。"), "success")
    return redirect(url_for("supporters.import_upload"))


@bp.route("/admin/categories", methods=["GET", "POST"])
@admin_required
def categories():
    form = CategoryForm()
    if form.validate_on_submit():
        try:
            category_id = form_int("category_id")
            if category_id is not None:
                category = db.session.get(BusinessCategory, category_id) or abort(404)
                services.rename_category(category, form.name.data or "", form.name_en.data or "", actor=current_user)
            else:
                services.add_category(form.name.data or "", form.name_en.data or "", actor=current_user)
        except InvalidInput as exc:
            add_error(form, exc)
        else:
            flash(_("業種を保存しました。"), "success")
            return redirect(url_for("supporters.categories"))
    return render_template("supporters/categories.html", form=form,
                           categories=services.list_categories())
