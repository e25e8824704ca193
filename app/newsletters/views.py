"""Newsletter pages: writing, preview, test, sending and its progress, unsubscribing, archive."""
from __future__ import annotations

from datetime import date, datetime, timezone

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_login import current_user
from werkzeug.datastructures import FileStorage

from app.access import staff_required
from app.accounts.services import Viewer, area_scope
from app.errors import InvalidInput, InvalidState, NotFound
from app.extensions import csrf, db, limiter
from app.formatting import TOKYO
from app.forms import ConfirmForm
from app.geography.services import list_areas, list_districts, list_stations
from app.i18n import gettext as _
from app.labels import KIND, localized
from app.newsletters import audience as audiences
from app.newsletters import recipients, sender, services
from app.newsletters.forms import NewsletterForm, ScheduleForm
from app.newsletters.rendering import content, layouts
from app.site import add_error, int_arg, parse_id, search_arg
from app.submissions import create_once, new_key
from app.supporters import services as supporters_services
from app.supporters.models import Supporter
from app.supporters.services import area_of, list_categories
from app.trainings.services import list_trainings

bp = Blueprint("newsletters", __name__)


def _get(newsletter_id: int):
    return services.get_newsletter(newsletter_id)


def _choices(form: NewsletterForm) -> NewsletterForm:
    everyone = _("すべて")
    form.layout.choices = list(layouts().items())
    form.station_id.choices = [(0, everyone)] + [(s.id, s.label) for s in list_stations()]
    form.area_id.choices = [(0, everyone)] + [(a.id, a.label) for a in list_areas()]
    form.district_ids.choices = [(d.id, f"{d.label}（{d.area.label}）") for d in list_districts()]
    form.kind.choices = [("", everyone)] + [(k, str(v)) for k, v in KIND.items()]
    form.category_id.choices = [(0, everyone)] + [(c.id, localized(c.name, c.name_en))
                                                   for c in list_categories()]
    form.training_id.choices = [(0, _("問わない"))] + [(t.id, t.title) for t in list_trainings()]
    return form


def _audience(form: NewsletterForm) -> audiences.Audience:
    return audiences.Audience(area_id=form.area_id.data or None,
                              station_id=form.station_id.data or None,
                              district_ids=sorted(set(form.district_ids.data or [])),
                              kind=form.kind.data or "", category_id=form.category_id.data or None,
                              training_id=form.training_id.data or None)


@bp.get("/staff/newsletters")
@staff_required
def index():
    issues = services.list_newsletters()
    figures = {n.id: services.progress(n.id) for n in issues}
    return render_template("newsletters/index.html", issues=issues, figures=figures)


@bp.route("/staff/newsletters/new", methods=["GET", "POST"])
@staff_required
def new():
    return _edit(None)


@bp.route("/staff/newsletters/<int:newsletter_id>/edit", methods=["GET", "POST"])
@staff_required
def edit(newsletter_id: int):
    newsletter = _get(newsletter_id)
    if newsletter.status not in services.EDITABLE_STATES:
        flash(_("送信を始めた通信は変更できません。"), "error")
        return redirect(url_for("newsletters.show", newsletter_id=newsletter.id))
    return _edit(newsletter)


def _edit(newsletter):
    form = _choices(NewsletterForm(obj=newsletter))
    if request.method == "GET" and newsletter is None:
        form.layout.data = "regular"
    if request.method == "GET" and newsletter is not None:
        audience = audiences.Audience.from_dict(newsletter.audience)
        form.area_id.data, form.station_id.data = audience.area_id or 0, audience.station_id or 0
        form.district_ids.data = audience.district_ids + (
            [audience.district_id] if audience.district_id else [])
        form.kind.data, form.category_id.data = audience.kind, audience.category_id or 0
        form.training_id.data = audience.training_id or 0
        form.include_trainings.data = bool((newsletter.blocks or {}).get("upcoming_trainings"))
        period = (newsletter.blocks or {}).get("concern_statistics")
        if period:
            form.stats_from.data = date.fromisoformat(period["from"])
            form.stats_to.data = date.fromisoformat(period["to"])
    counts = None
    if request.method == "POST" and request.form.get("check"):
        # 「人数を確かめる」: count the audience as chosen now, save nothing.
        form.validate_on_submit()
        form.form_errors[:] = []
        for f in form:
            f.errors = []
        counts = audiences.counts(_audience(form))
    elif form.validate_on_submit():
        data = {k: getattr(form, k).data for k in ("layout", "number", "title", "subject", "body_md",
                                                   "stats_from", "stats_to", "include_trainings")}
        upload = form.image.data
        # A new file only: when editing, the field holds the stored picture's name.
        picture = upload.read() if isinstance(upload, FileStorage) and upload.filename else None
        try:
            # A new draft is made once, however often the form is sent (a double click).
            saved, first = create_once(
                form.submission_key.data if newsletter is None else None, "newsletter",
                lambda: services.save_draft(newsletter, data, _audience(form), current_user.id,
                                            image=picture, remove_image=form.remove_image.data))
        except (InvalidInput, InvalidState) as exc:
            db.session.rollback()
            add_error(form, exc)
        else:
            if saved is None:
                return redirect(url_for("newsletters.show", newsletter_id=first) if first
                                else url_for("newsletters.index"))
            flash(_("下書きを保存しました。"), "success")
            return redirect(url_for("newsletters.show", newsletter_id=saved.id))
    if counts is None:
        counts = audiences.counts(_audience(form) if request.method == "POST" else (
            audiences.Audience.from_dict(newsletter.audience) if newsletter else audiences.Audience()))
    return render_template("newsletters/edit.html", form=form, newsletter=newsletter, counts=counts)


@bp.get("/staff/mail/held")
@staff_required
def held_addresses():
    """Addresses that bounced and are no longer mailed: whom to phone for a new address."""
    people = supporters_services.held_addresses(area_scope(current_user))
    mobile = sum(1 for s in people if supporters_services.is_mobile_carrier(s.email))
    return render_template("newsletters/held.html", people=people, mobile=mobile,
                           is_mobile=supporters_services.is_mobile_carrier)


@bp.get("/staff/newsletters/audience-count")
@staff_required
def audience_count():
    """How many an audience reaches, by channel (the edit page asks as choices change)."""
    args = request.args
    audience = audiences.Audience(
        station_id=int_arg("station_id"), area_id=int_arg("area_id"),
        district_ids=sorted({n for n in (parse_id(v) for v in args.getlist("district_ids")) if n}),
        kind=args.get("kind") if args.get("kind") in KIND else "",
        category_id=int_arg("category_id"), training_id=int_arg("training_id"))
    counts = audiences.counts(audience)
    return jsonify(text=_("メールで %(email)d 人、郵送で %(post)d 人（両方で受け取る %(both)d 人を含む。活動中の対象 %(total)d 人）",
                          email=counts["email"], post=counts["post"], both=counts["both"],
                          total=counts["total"]), **counts)


@bp.get("/staff/newsletters/<int:newsletter_id>")
@staff_required
def show(newsletter_id: int):
    newsletter = _get(newsletter_id)
    counts = audiences.counts(audiences.Audience.from_dict(newsletter.audience))
    figures = services.progress(newsletter.id)
    return render_template(
        "newsletters/show.html", newsletter=newsletter, counts=counts,
        figures=figures, failures=services.failures(newsletter.id),
        unsent=services.unsent(newsletter.id, area_scope(current_user))
        if newsletter.status == "cancelled" else [],
        form=ConfirmForm(), schedule_form=ScheduleForm(), layouts=layouts(),
        actions=services.allowed_actions(newsletter, figures),
        confirmed=services.CONFIRMED_ACTIONS,
        capped=newsletter.status == "sending" and figures["waiting"] > 0
        and sender.left_today() == 0)


@bp.get("/staff/newsletters/<int:newsletter_id>/progress.json")
@staff_required
def progress_json(newsletter_id: int):
    newsletter = _get(newsletter_id)
    return jsonify(status=newsletter.status, **services.progress(newsletter.id))


def _recipient():
    """The supporter whose copy to preview (only one the staff member may see)."""
    supporter_id = int_arg("supporter")
    supporter = db.session.get(Supporter, supporter_id) if supporter_id else None
    if supporter is not None and not Viewer.of(current_user).sees(area_of(supporter)):
        return None
    return supporter


@bp.get("/staff/newsletters/<int:newsletter_id>/preview")
@staff_required
def preview(newsletter_id: int):
    newsletter = _get(newsletter_id)
    recipient = _recipient()
    rendered = services.preview(newsletter, recipient)
    q = search_arg()
    scope = area_scope(current_user)
    found = audiences.search_email_recipients(
        audiences.Audience.from_dict(newsletter.audience), q, scope) if q.strip() else []
    return render_template("newsletters/preview.html", newsletter=newsletter, rendered=rendered,
                           recipient=recipient, q=q, found=found,
                           samples=services.sample_recipients(newsletter, scope=scope))


@bp.get("/staff/newsletters/<int:newsletter_id>/preview.html")
@staff_required
def preview_html(newsletter_id: int):
    """The HTML version alone, shown in a sandboxed frame beside the text version."""
    rendered = services.preview(_get(newsletter_id), _recipient())
    response = make_response(rendered.html)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'self'")
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.post("/staff/newsletters/<int:newsletter_id>/test")
@staff_required
def send_test(newsletter_id: int):
    newsletter = _get(newsletter_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.send_test(newsletter, current_user._get_current_object())
    flash(_("%(email)s にテストをお送りします（1分ほどで届きます）。あなたの圏域の方に届くのと同じ形です。",
            email=current_user.email), "success")
    return redirect(url_for("newsletters.show", newsletter_id=newsletter.id))


@bp.get("/staff/newsletters/<int:newsletter_id>/<any(send, cancel):action>")
@staff_required
def confirm_action(newsletter_id: int, action: str):
    """Sending and cancelling cannot be undone: say what will happen, to how many, first."""
    newsletter = _get(newsletter_id)
    if action not in services.allowed_actions(newsletter):
        flash(_("この通信ではいまその操作はできません。"), "error")
        return redirect(url_for("newsletters.show", newsletter_id=newsletter.id))
    back = url_for("newsletters.show", newsletter_id=newsletter.id)
    target = url_for("newsletters.act", newsletter_id=newsletter.id, action=action)
    if action == "send":
        counts = audiences.counts(audiences.Audience.from_dict(newsletter.audience))
        lines = [_("「%(title)s」を、いまから %(n)d 人にメールで送ります。", title=newsletter.title,
                   n=counts["email"]),
                 _("送る相手: %(who)s", who=audiences.describe(audiences.Audience.from_dict(
                     newsletter.audience))),
                 _("郵送の %(n)d 人分は、郵送版と宛名ラベルを印刷してお送りください。", n=counts["post"])]
        return render_template("confirm.html", title=_("通信を送る"), lines=lines,
                               warning=_("送ったメールは取り消せません（止められるのは、まだ送っていない分だけです）。"),
                               action=target, back=back, hidden={"submission_key": new_key()},
                               button=_("%(n)d 人に送る", n=counts["email"]))
    waiting = services.progress(newsletter.id)
    lines = [_("「%(title)s」の送信を取り消します。", title=newsletter.title),
             _("まだ送っていない %(n)d 人には送りません（送信済みは %(sent)d 人）。",
               n=waiting["waiting"] + waiting["deferred"], sent=waiting["sent"])]
    return render_template("confirm.html", title=_("送信を取り消す"), lines=lines, danger=True,
                           warning=_("取り消すと再開できません。"), action=target, back=back,
                           button=_("送信を取り消す"))


@bp.post("/staff/newsletters/<int:newsletter_id>/<any(send, unschedule, pause, resume, cancel, retry):action>")
@staff_required
def act(newsletter_id: int, action: str):
    newsletter = _get(newsletter_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    messages = {
        "send": _("送信を始めました。数分で届き始めます。"),
        "unschedule": _("予約を取り消し、下書きに戻しました。"),
        "pause": _("一時停止しました。"),
        "resume": _("再開しました。"),
        "cancel": _("取り消しました。まだ送っていない分は送りません。"),
        "retry": _("失敗した宛先をもう一度送ります。"),
    }
    try:
        if action == "send":
            started, _first = create_once(request.form.get("submission_key"), "newsletter_send",
                                          lambda: _start_send(newsletter))
            if started is None:  # this confirmation came twice (a double click): the first's
                # message is the one shown, not an error about the send it began.
                return redirect(url_for("newsletters.show", newsletter_id=newsletter.id))
        elif action == "retry":
            services.retry_failed(newsletter)
        elif action == "cancel":
            services.cancel(newsletter, actor=current_user)
        else:
            getattr(services, action)(newsletter)
    except InvalidState as exc:
        flash(str(exc), "error")
    else:
        flash(messages[action], "success")
    return redirect(url_for("newsletters.show", newsletter_id=newsletter.id))


def _start_send(newsletter):
    services.start_send(newsletter.id, actor=current_user)
    return newsletter


@bp.post("/staff/newsletters/<int:newsletter_id>/copy")
@staff_required
def copy(newsletter_id: int):
    """A sent or cancelled issue as the start of a new draft (text, sections, audience)."""
    newsletter = _get(newsletter_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    draft = services.copy_newsletter(current_user, newsletter)
    flash(_("「%(title)s」の写しを下書きにしました。直して送れます。", title=newsletter.title), "success")
    return redirect(url_for("newsletters.edit", newsletter_id=draft.id))


@bp.post("/staff/newsletters/<int:newsletter_id>/schedule")
@staff_required
def schedule(newsletter_id: int):
    newsletter = _get(newsletter_id)
    form = ScheduleForm()
    if form.validate_on_submit():
        if not form.send_date.data or not form.send_time.data:
            flash(_("送信する日と時刻を入力してください。"), "error")
        else:
            local = datetime.combine(form.send_date.data, form.send_time.data, tzinfo=TOKYO)
            try:
                services.schedule(newsletter, local.astimezone(timezone.utc), actor=current_user)
            except (InvalidInput, InvalidState) as exc:
                flash(str(exc), "error")
            else:
                flash(_("送信を予約しました。"), "success")
    else:
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
    return redirect(url_for("newsletters.show", newsletter_id=newsletter.id))


@bp.get("/staff/newsletters/<int:newsletter_id>/print")
@staff_required
def print_edition(newsletter_id: int):
    """The issue as a print-ready A4 page for supporters who take it by post."""
    newsletter = _get(newsletter_id)
    counts = audiences.counts(audiences.Audience.from_dict(newsletter.audience))
    return render_template("newsletters/print.html", newsletter=newsletter,
                           content=content(newsletter), post_count=counts["post"],
                           stations=list_stations(), contacts=recipients.area_infos())


@bp.get("/staff/newsletters/<int:newsletter_id>/labels")
@staff_required
def labels(newsletter_id: int):
    """A4 sheets of address labels (12 or 24 a sheet), sorted by postal code."""
    newsletter = _get(newsletter_id)
    per_sheet = 24 if request.args.get("per_sheet") == "24" else 12
    scope = area_scope(current_user)
    found = services.address_labels(newsletter, scope, actor=current_user)
    sheets = [found[i:i + per_sheet] for i in range(0, len(found), per_sheet)]
    counts = audiences.counts(audiences.Audience.from_dict(newsletter.audience))
    return render_template("newsletters/labels.html", newsletter=newsletter, sheets=sheets,
                           per_sheet=per_sheet, count=len(found),
                           outside=max(0, counts["post"] - len(found)) if scope is not None else 0)


# --- public: unsubscribe and archive ----------------------------------------------------------

@bp.route("/u/<token>", methods=["GET", "POST"])
@csrf.exempt  # RFC 8058 one-click: mail clients POST without a form token
@limiter.limit(lambda: current_app.config["HOTNET_PUBLIC_FORM_RATE_LIMIT"], methods=["POST"])
def unsubscribe(token: str):
    """GET shows a button (a GET never unsubscribes); POST unsubscribes at once."""
    if services.is_test_token(token):  # a staff member trying the link of a test send
        return render_template("newsletters/unsubscribe.html", invalid=False, test=True)
    try:
        supporter = (services.unsubscribe(token) if request.method == "POST"
                     else services.supporter_for_token(token))
    except NotFound:
        return render_template("newsletters/unsubscribe.html", invalid=True), 404
    if request.method == "POST" and request.form.get("from_page"):
        # From our own page: show the answer at its own address (a reload sends nothing).
        return redirect(url_for("newsletters.unsubscribe", token=token))
    # A mail client's one-click POST (RFC 8058) gets its answer directly; a link opened again
    # after unsubscribing (until the person chooses e-mail again) says it is done, not asks.
    done = request.method == "POST" or supporter.unsubscribed_at is not None
    return render_template("newsletters/unsubscribe.html", invalid=False, done=done,
                           supporter=supporter, token=token)


def _public_or_staff(public: bool) -> None:
    """404 unless what is asked for is public or a staff member asks (drafts are theirs)."""
    if not (public or (current_user.is_authenticated and current_user.is_staff)):
        abort(404)


@bp.get("/newsletters/<int:newsletter_id>/image")
def image(newsletter_id: int):
    """The issue's picture: public once the issue went out (mail clients fetch it)."""
    newsletter = _get(newsletter_id)
    public = newsletter.status in ("sending", "paused", "sent", "cancelled")
    if not newsletter.image:
        abort(404)
    _public_or_staff(public)
    if public:
        response = send_from_directory(services.image_folder(), newsletter.image, max_age=3600)
        response.cache_control.public = True
        return response
    # A draft's picture is the staff's alone: nobody keeps a copy.
    response = send_from_directory(services.image_folder(), newsletter.image, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/newsletters")
def public_archive():
    return render_template("newsletters/public_archive.html",
                           issues=services.published_issues())


@bp.get("/newsletters/<int:newsletter_id>")
def public_issue(newsletter_id: int):
    """The web edition: open from the moment the first message left (the 「ウェブで読む」 link
    in it must work), and kept for a cancelled issue that reached some people; before that,
    to staff only (the same link in a test send). The archive lists an issue only once its
    sending ended."""
    newsletter = _get(newsletter_id)
    draft = not services.is_public(newsletter)
    _public_or_staff(not draft)
    # Before it goes out, staff see it here too: the link in a test send must open.
    response = make_response(render_template("newsletters/public_issue.html",
                                             newsletter=newsletter, content=content(newsletter),
                                             draft=draft))
    if draft:
        response.headers["Cache-Control"] = "private, no-store"
    return response
