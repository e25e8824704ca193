"""Who can help nearby: supporters and businesses asked for help (協力依頼) with a concern.

Staff see suggested helpers — the concern's district first, then its area; those who said
they can do what is needed (or whose business does it); active; not asked in the last
RECENT_DAYS — and ask one. The supporter gets only what staff wrote, by mail with a link to
answer, and on their page; the answer (引き受け / 見送り) goes on the concern's timeline.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from app import actors
from app.audit import services as audit
from app.concerns.models import Concern, HelpRequest
from app.concerns.timeline import add_event
from app.dbtypes import utcnow
from app.errors import InvalidState, NotFound, raise_problems
from app.extensions import db
from app.geography.models import District
from app.i18n import gettext as _
from app.labels import HELP_KIND
from app.outbox import services as outbox
from app.signals import supporter_erased
from app.supporters import sections
from app.supporters.models import BusinessCategory, Supporter
from app.urls import external_url

RECENT_DAYS = 14
MESSAGE_LIMIT = 1000
# A business's category that does a kind of help (supporters' DEFAULT_CATEGORIES codes).
BUSINESS_DOES = {"cleanup": ("cleanup",), "garden": ("gardening",), "housing": ("real_estate",),
                 "shopping": ("shop",), "watch": ("care",), "escort": ("care",)}
TOKEN_DAYS = 30


def _does(supporter: Supporter, need: str, categories: dict[int, str]) -> bool:
    if need in (supporter.can_help or []):
        return True
    return categories.get(supporter.business_category_id) in BUSINESS_DOES.get(need, ())


def suggest_helpers(concern: Concern, need: str, limit: int = 10) -> list[Supporter]:
    """Active supporters and businesses who can do `need`: the concern's district first, then
    its area; none asked in the last RECENT_DAYS."""
    if need not in HELP_KIND or concern.area_id is None:
        return []
    recently = select(HelpRequest.supporter_id).where(
        HelpRequest.asked_at >= utcnow() - timedelta(days=RECENT_DAYS))
    candidates = db.session.scalars(
        select(Supporter).join(District, Supporter.district_id == District.id)
        .where(Supporter.status == "active", District.area_id == concern.area_id,
               Supporter.id.not_in(recently))
        .order_by(Supporter.sort_key, Supporter.id)).all()
    categories = dict(db.session.execute(select(BusinessCategory.id, BusinessCategory.code)).all())
    able = [s for s in candidates if _does(s, need, categories)]
    return sorted(able, key=lambda s: s.district_id != concern.district_id)[:limit]


def _token(request: HelpRequest) -> str:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="help-request").dumps(
        request.id)


def request_for_token(token: str) -> HelpRequest:
    try:
        request_id = URLSafeTimedSerializer(current_app.config["SECRET_KEY"],
                                            salt="help-request").loads(
            token, max_age=TOKEN_DAYS * 86400)
    except (BadSignature, SignatureExpired):
        raise NotFound(token) from None
    found = db.session.get(HelpRequest, request_id) if isinstance(request_id, int) else None
    if found is None:
        raise NotFound(token)
    return found


def ask_for_help(concern: Concern, supporter_id: int, need: str, message: str, *,
                 actor) -> HelpRequest:
    """Ask one supporter; they get `message` (and nothing else of the concern) by mail."""
    if concern.erased_at is not None:
        raise InvalidState(_("保存期間を過ぎて個人情報を消去した記録は変更できません。"))
    message = (message or "").strip()
    problems = {}
    if need not in HELP_KIND:
        problems["need"] = _("お願いしたいことを選んでください。")
    if not message:
        problems["message"] = _("お願いする内容を書いてください（ご本人が分かることは書かないでください）。")
    elif len(message) > MESSAGE_LIMIT:
        problems["message"] = _("%(max)d文字以内で入力してください。", max=MESSAGE_LIMIT)
    helpers = {s.id: s for s in suggest_helpers(concern, need, limit=1000)} if need in HELP_KIND else {}
    if not problems and supporter_id not in helpers:
        problems["supporter_id"] = _("お願いする方を候補から選んでください。")
    raise_problems(problems)
    supporter = helpers[supporter_id]
    staff_id, staff_name, _kind = actors.stamp(actor)
    request = HelpRequest(concern_id=concern.id, supporter_id=supporter.id, need=need,
                          message=message, staff_id=staff_id, staff_name=staff_name)
    db.session.add(request)
    db.session.flush()
    add_event(concern, "help", actor, status_to="asked", body=supporter.display_name)
    audit.record("help.ask", "help_request", request.id,
                 params={"reference": concern.reference, "name": supporter.display_name},
                 actor=actor)
    outbox.enqueue(supporter.email, _("【ほっとネット】地域の方への協力のお願い"), "help_request",
                   supporter_id=supporter.id, supporter=supporter, request=request,
                   need=str(HELP_KIND[need]), url=external_url("concerns.help_answer",
                                                               token=_token(request)))
    db.session.commit()
    return request


def answer(request: HelpRequest, accepted: bool, *, actor) -> HelpRequest:
    """The supporter's answer (from their page or the mailed link). Answering again changes
    the answer; a withdrawn request cannot be answered."""
    if request.status == "withdrawn":
        raise InvalidState(_("このお願いは取り下げられました。"))
    status = "accepted" if accepted else "declined"
    if request.status == status:
        return request
    old = request.status
    request.status, request.answered_at = status, utcnow()
    add_event(request.concern, "help", actor, status_from=old, status_to=status,
              body=request.supporter.display_name)
    if request.concern.assignee is not None:
        outbox.enqueue(request.concern.assignee.email,
                       _("【ほっとネット】協力のお願いに返事がありました（%(ref)s）",
                         ref=request.concern.reference),
                       "help_answered", staff_id=request.concern.assignee_id, request=request,
                       url=external_url("concerns.staff_detail", concern_id=request.concern_id))
    db.session.commit()
    return request


def requests_of_concern(concern: Concern) -> list[HelpRequest]:
    return list(db.session.scalars(select(HelpRequest).where(HelpRequest.concern_id == concern.id)
                                   .order_by(HelpRequest.asked_at, HelpRequest.id)))


@sections.register(sections.ME, "concerns/_me_help.html", order=20)
def requests_for(supporter: Supporter) -> list[HelpRequest]:
    """A supporter's own requests for help, newest first (their page)."""
    return list(db.session.scalars(
        select(HelpRequest).where(HelpRequest.supporter_id == supporter.id)
        .order_by(HelpRequest.asked_at.desc(), HelpRequest.id.desc()).limit(20)))


def get_own_request(supporter: Supporter, request_id: int) -> HelpRequest:
    request = db.session.get(HelpRequest, request_id)
    if request is None or request.supporter_id != supporter.id:
        raise NotFound(request_id)
    return request


@supporter_erased.connect
def _on_supporter_erased(supporter_id: int, **_kwargs) -> None:
    """Withdrawn: their open requests are withdrawn, and what was written to them erased."""
    for request in db.session.scalars(select(HelpRequest).where(
            HelpRequest.supporter_id == supporter_id)):
        request.message = ""
        if request.status == "asked":
            request.status = "withdrawn"
