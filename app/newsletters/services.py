"""The rules of newsletters: drafts, audiences, preview, scheduling, and the send's life cycle."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import func, insert, literal, select, update

from app.accounts.models import StaffUser
from app.audit import services as audit
from app.dbtypes import utcnow
from app.errors import InvalidInput, InvalidState, NotFound, raise_problems
from app.extensions import db
from app.i18n import gettext as _
from app.images import clean_image, store
from app.newsletters import audience as audiences
from app.newsletters.mime import build_message
from app.newsletters.models import Delivery, Newsletter
from app.newsletters.recipients import area_infos, personal_for
from app.newsletters.rendering import layouts, live_blocks, render
from app.newsletters.tokens import read_unsubscribe_token
from app.outbox import services as outbox
from app.signals import supporter_erased
from app.supporters.models import Supporter
from app.supporters.services import in_scope
from app.text import show_postal, tidy
from app.urls import external_url

EDITABLE_STATES = ("draft", "scheduled")
# What may be done to an issue in each state: the page shows these, the services enforce them.
ACTIONS_BY_STATUS = {
    "draft": ("send", "schedule", "edit"),
    "scheduled": ("unschedule", "edit"),
    "sending": ("pause", "cancel", "retry"),
    "paused": ("resume", "cancel", "retry"),
    "sent": ("retry", "copy"),
    "cancelled": ("copy",),
}
# Actions that cannot be undone ask first, on a page of their own.
CONFIRMED_ACTIONS = ("send", "cancel")


def allowed_actions(newsletter: Newsletter, figures: dict | None = None) -> tuple[str, ...]:
    """What the issue's page offers now (a retry only when something failed)."""
    actions = ACTIONS_BY_STATUS.get(newsletter.status, ())
    if figures is not None and not figures.get("failed"):
        actions = tuple(a for a in actions if a != "retry")
    return actions


def get_newsletter(newsletter_id: int) -> Newsletter:
    newsletter = db.session.get(Newsletter, newsletter_id)
    if newsletter is None:
        raise NotFound(newsletter_id)
    return newsletter


def list_newsletters() -> list[Newsletter]:
    return list(db.session.scalars(select(Newsletter).order_by(Newsletter.created_at.desc(),
                                                               Newsletter.id.desc())))


def _checked_newsletter(data: dict) -> dict:
    problems = {}
    data = dict(data)
    for key in ("number", "title", "subject"):  # kept as typed (full-width brackets and all)
        data[key] = tidy(data.get(key))
    if not data["title"]:
        problems["title"] = _("題名を入力してください。")
    if not data["subject"]:
        problems["subject"] = _("メールの件名を入力してください。")
    if bool(data.get("stats_from")) != bool(data.get("stats_to")):
        problems["stats_to" if data.get("stats_from") else "stats_from"] = _(
            "集計期間は「から」と「まで」の両方を入れてください。")
    elif data.get("stats_from") and data["stats_from"] > data["stats_to"]:
        problems["stats_to"] = _("「まで」は「から」より後の日にしてください。")
    if data.get("layout") not in layouts():
        problems["layout"] = _("レイアウトを選んでください。")
    if not (data.get("body_md") or "").strip():
        problems["body_md"] = _("本文を入力してください。")
    raise_problems(problems)
    return data


def image_folder() -> Path:
    return Path(current_app.config["HOTNET_UPLOAD_DIR"]) / "newsletters"


def save_draft(newsletter: Newsletter | None, data: dict, audience: audiences.Audience,
               staff_id: int | None, image: bytes | None = None,
               remove_image: bool = False) -> Newsletter:
    """Create or change an issue that has not started sending.

    A picture is checked and re-encoded before anything is written, so a bad file loses
    nothing else the coordinator typed.
    """
    data = _checked_newsletter(data)
    cleaned = None
    if image:
        cleaned = clean_image(image, current_app.config["HOTNET_IMAGE_MAX_MB"] * 1024 * 1024)
    if newsletter is None:
        newsletter = Newsletter(staff_id=staff_id)
        db.session.add(newsletter)
    elif newsletter.status not in EDITABLE_STATES:
        raise InvalidState(_("送信を始めた通信は変更できません。"))
    for key in ("layout", "number", "title", "subject", "body_md"):
        setattr(newsletter, key, data[key])
    blocks = dict(newsletter.blocks or {})
    blocks.pop("concern_statistics", None)
    if data.get("stats_from"):
        blocks["concern_statistics"] = {"from": data["stats_from"].isoformat(),
                                        "to": data["stats_to"].isoformat()}
    blocks["upcoming_trainings"] = bool(data.get("include_trainings"))
    newsletter.blocks = blocks
    newsletter.audience = audience.to_dict()
    db.session.flush()
    if cleaned is not None:
        newsletter.image = store(image_folder(), f"newsletter-{newsletter.id}", *cleaned)
    elif remove_image and newsletter.image:
        (image_folder() / newsletter.image).unlink(missing_ok=True)
        newsletter.image = ""
    db.session.commit()
    return newsletter


# --- recipients, areas and personalisation -------------------------------------------------

def preview(newsletter: Newsletter, supporter: Supporter | None):
    """The HTML and text a given recipient would get (a sample recipient when none)."""
    area = None
    if supporter is not None and supporter.district is not None:
        area = area_infos().get(supporter.district.area_id)
    name = supporter.salutation if supporter is not None else _("%(name)s 様", name=_("西東 花子"))
    personal = personal_for(supporter.id if supporter else 0, name, newsletter.id)
    return render(newsletter, area, personal)


def sample_recipients(newsletter: Newsletter, limit: int = 50,
                      scope: frozenset[int] | None = None) -> list[Supporter]:
    audience = audiences.Audience.from_dict(newsletter.audience)
    query = in_scope(audiences.by_email(select(Supporter), audience), scope)
    return list(db.session.scalars(query.order_by(Supporter.sort_key).limit(limit)))


def send_test(newsletter: Newsletter, staff: StaffUser) -> None:
    """Queue the issue for the staff member as a real recipient would get it — addressed to
    them, with their own area's contact block and the real headers — marked [テスト] in the
    subject; the sender process delivers it within seconds."""
    area = area_infos().get(staff.areas[0].id) if staff.areas else None
    personal = personal_for(0, _("%(name)s 様", name=staff.name), newsletter.id)
    rendered = render(newsletter, area, personal)
    message = build_message(newsletter, staff.email, rendered, personal, test=True)
    outbox.enqueue_built(message, kind="newsletter_test", staff_id=staff.id)
    db.session.commit()


def copy_newsletter(actor: StaffUser, source: Newsletter) -> Newsletter:
    """A new draft with the issue's layout, text, picture, sections and audience."""
    draft = Newsletter(layout=source.layout, number="", title=source.title,
                       subject=source.subject, body_md=source.body_md,
                       audience=dict(source.audience or {}), blocks=dict(source.blocks or {}),
                       staff_id=actor.id, status="draft")
    db.session.add(draft)
    db.session.flush()
    if source.image:
        original = image_folder() / source.image
        if original.exists():
            draft.image = store(image_folder(), f"newsletter-{draft.id}", original.read_bytes(),
                                original.suffix.lstrip("."))
    audit.record("newsletter.copy", "newsletter", draft.id, params={"reference": str(source.id)},
                 actor=actor)
    db.session.commit()
    return draft


def is_public(newsletter: Newsletter) -> bool:
    """Whether the issue's web edition may be read: once the first message has gone."""
    if newsletter.status in ("sending", "paused", "sent"):
        return True
    if newsletter.status == "cancelled":
        return bool(db.session.scalar(select(func.count(Delivery.id)).where(
            Delivery.newsletter_id == newsletter.id, Delivery.status == "sent")))
    return False


def published_issues() -> list[Newsletter]:
    return list(db.session.scalars(select(Newsletter).where(Newsletter.status == "sent")
                                   .order_by(Newsletter.started_at.desc())))


# --- life cycle ------------------------------------------------------------------------------

def schedule(newsletter: Newsletter, when: datetime, *, actor) -> Newsletter:
    """Send at `when` (UTC); the scheduler process starts it when due, also after downtime."""
    if newsletter.status not in EDITABLE_STATES:
        raise InvalidState(_("この通信はもう予約できません。"))
    if when <= utcnow():
        raise InvalidInput(_("予約の日時は、これから先の日時にしてください。"), field="send_at")
    newsletter.status, newsletter.scheduled_at = "scheduled", when
    audit.record("newsletter.schedule", "newsletter", newsletter.id, params={"when": when.isoformat()},
                 actor=actor)
    db.session.commit()
    return newsletter


def unschedule(newsletter: Newsletter) -> Newsletter:
    if newsletter.status != "scheduled":
        raise InvalidState(_("予約されていません。"))
    newsletter.status, newsletter.scheduled_at = "draft", None
    db.session.commit()
    return newsletter


def start_send(newsletter_id: int, *, actor) -> int:
    """Write one ledger row per e-mail recipient and mark the issue as sending.

    Exactly once: the status change is guarded, so a second call (a double click, or the
    scheduler catching up) changes nothing. Rows are written by one INSERT … SELECT, never
    by loading the audience. Returns the number of e-mail recipients queued.
    """
    now = utcnow()
    claimed = db.session.execute(
        update(Newsletter)
        .where(Newsletter.id == newsletter_id, Newsletter.status.in_(EDITABLE_STATES))
        .values(status="sending", started_at=now, updated_at=now)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        raise InvalidState(_("この通信はすでに送信を始めています。"))
    newsletter = db.session.get(Newsletter, newsletter_id)
    newsletter.frozen_blocks = live_blocks(newsletter)
    audience = audiences.Audience.from_dict(newsletter.audience)
    rows = audiences.by_email(
        select(literal(newsletter_id), Supporter.id, Supporter.email, literal("waiting"),
               literal(0), literal(now, Delivery.next_attempt_at.type), literal(""), literal("")),
        audience)
    db.session.execute(insert(Delivery).from_select(
        ["newsletter_id", "supporter_id", "email", "status", "attempts", "next_attempt_at",
         "claimed_by", "last_error"], rows))
    newsletter.post_count = db.session.scalar(
        audiences.by_post(select(func.count(Supporter.id)), audience)) or 0
    queued = db.session.scalar(select(func.count(Delivery.id))
                               .where(Delivery.newsletter_id == newsletter_id)) or 0
    audit.record("newsletter.send", "newsletter", newsletter_id, params={"people": queued},
                 actor=actor)
    db.session.commit()
    return queued


def start_due(now: datetime | None = None) -> list[int]:
    """Start every scheduled issue whose time has come (run by the scheduler process)."""
    now = now or utcnow()
    due = list(db.session.scalars(select(Newsletter.id).where(
        Newsletter.status == "scheduled", Newsletter.scheduled_at <= now)))
    started = []
    for newsletter_id in due:
        try:
            start_send(newsletter_id, actor=None)
            started.append(newsletter_id)
        except InvalidState:
            continue
    return started


def pause(newsletter: Newsletter) -> None:
    _transition(newsletter, "sending", "paused", _("送信中の通信だけ一時停止できます。"))


def resume(newsletter: Newsletter) -> None:
    _transition(newsletter, "paused", "sending", _("一時停止中の通信だけ再開できます。"))


def cancel(newsletter: Newsletter, *, actor) -> None:
    """Stop for good: what is not sent yet will not be sent."""
    if newsletter.status not in ("sending", "paused", "scheduled", "draft"):
        raise InvalidState(_("この通信は取り消せません。"))
    newsletter.status = "cancelled"
    newsletter.finished_at = utcnow()
    db.session.execute(update(Delivery).where(
        Delivery.newsletter_id == newsletter.id,
        Delivery.status.in_(("waiting", "deferred", "sending"))).values(status="cancelled"))
    audit.record("newsletter.cancel", "newsletter", newsletter.id, actor=actor)
    db.session.commit()


def retry_failed(newsletter: Newsletter) -> int:
    """Queue the failed recipients again."""
    if newsletter.status not in ("sent", "sending", "paused"):
        raise InvalidState(_("この通信は再送できません。"))
    count = db.session.execute(update(Delivery).where(
        Delivery.newsletter_id == newsletter.id, Delivery.status == "failed").values(
        status="waiting", attempts=0, next_attempt_at=utcnow(), last_error="")).rowcount
    if count:
        newsletter.status, newsletter.finished_at = "sending", None
    db.session.commit()
    return count


def _transition(newsletter: Newsletter, source: str, target: str, message: str) -> None:
    changed = db.session.execute(update(Newsletter).where(
        Newsletter.id == newsletter.id, Newsletter.status == source).values(status=target)).rowcount
    if changed != 1:
        db.session.rollback()
        raise InvalidState(message)
    db.session.commit()
    db.session.refresh(newsletter)


def progress(newsletter_id: int) -> dict[str, int]:
    """Counts of the ledger by state: waiting (incl. in flight), sent, deferred, failed."""
    rows = dict(db.session.execute(
        select(Delivery.status, func.count(Delivery.id))
        .where(Delivery.newsletter_id == newsletter_id).group_by(Delivery.status)).all())
    figures = {
        "sent": rows.get("sent", 0), "deferred": rows.get("deferred", 0),
        "failed": rows.get("failed", 0), "skipped": rows.get("skipped", 0),
        "cancelled": rows.get("cancelled", 0),
        "waiting": rows.get("waiting", 0) + rows.get("sending", 0),
    }
    figures["total"] = sum(figures.values())
    done = figures["sent"] + figures["failed"] + figures["skipped"] + figures["cancelled"]
    figures["percent"] = int(100 * done / figures["total"]) if figures["total"] else 0
    # How much of the audience it reached (a cancelled issue stops short of 100 %).
    figures["sent_percent"] = int(100 * figures["sent"] / figures["total"]) if figures["total"] else 0
    figures["not_sent"] = figures["cancelled"] + figures["failed"] + figures["skipped"]
    return figures


def unsent(newsletter_id: int, scope=None, limit: int = 500) -> list[tuple[Delivery, Supporter]]:
    """Who a cancelled issue did not reach (the staff member's areas only)."""
    query = in_scope(select(Delivery, Supporter).join(Supporter, Supporter.id == Delivery.supporter_id)
                     .where(Delivery.newsletter_id == newsletter_id,
                            Delivery.status == "cancelled"), scope)
    return list(db.session.execute(query.order_by(Supporter.sort_key).limit(limit)).all())


def failures(newsletter_id: int, limit: int = 500) -> list[Delivery]:
    """Recipients the issue did not reach: refused by the server, or set aside (no address
    any more, one that does not parse), each with its reason."""
    return list(db.session.scalars(select(Delivery).where(
        Delivery.newsletter_id == newsletter_id, Delivery.status.in_(("failed", "skipped")))
        .order_by(Delivery.id).limit(limit)))


@supporter_erased.connect
def _on_supporter_erased(supporter_id: int, **_kwargs) -> None:
    """A withdrawn supporter's waiting rows are set aside explicitly, and every row forgets
    the address (the caller commits)."""
    db.session.execute(update(Delivery).where(
        Delivery.supporter_id == supporter_id,
        Delivery.status.in_(("waiting", "deferred", "sending"))).values(
        status="skipped", claimed_by="", last_error="the supporter withdrew before it was sent"))
    db.session.execute(update(Delivery).where(Delivery.supporter_id == supporter_id)
                       .values(email=None))


def _undelivered_deliveries(limit: int):
    """Newsletter recipients not reached, for the outbox's list of undelivered mail."""
    where = Delivery.status.in_(("failed", "skipped", "deferred"))
    total = db.session.scalar(select(func.count(Delivery.id)).where(where)) or 0
    rows = db.session.execute(
        select(Delivery, Newsletter.title).join(Newsletter, Newsletter.id == Delivery.newsletter_id)
        .where(where).order_by(Delivery.id.desc()).limit(limit)).all()
    return total, [outbox.Undelivered(
        source="newsletter", id=d.id, kind="newsletter", recipient=d.email or "", subject=title,
        status=d.status, attempts=d.attempts, error=d.last_error, at=d.next_attempt_at,
        link=external_url("newsletters.show", newsletter_id=d.newsletter_id),
        retryable=False) for d, title in rows]


outbox.SOURCES["newsletter"] = _undelivered_deliveries


# --- unsubscribing --------------------------------------------------------------------------

def unsubscribe(token: str) -> Supporter:
    """Stop e-mail delivery for the token's supporter (post stays as chosen). Idempotent."""
    found = read_unsubscribe_token(token)
    if found is None:
        raise NotFound(token)
    supporter = db.session.get(Supporter, found[0])
    if supporter is None:
        raise NotFound(token)
    if supporter.unsubscribed_at is None:
        supporter.unsubscribed_at = utcnow()
        supporter.delivery = {"email": "none", "both": "post"}.get(supporter.delivery,
                                                                  supporter.delivery)
        from app.supporters.services import record_change
        record_change(supporter, "unsubscribed", {"delivery": ["email", supporter.delivery]},
                      actor=supporter)  # the person, by the link in their mail
        db.session.commit()
    return supporter


def is_test_token(token: str) -> bool:
    """Whether the link came from a test send (made for a staff member, no supporter)."""
    found = read_unsubscribe_token(token)
    return found is not None and found[0] == 0


def supporter_for_token(token: str) -> Supporter:
    found = read_unsubscribe_token(token)
    supporter = db.session.get(Supporter, found[0]) if found else None
    if supporter is None:
        raise NotFound(token)
    return supporter



# --- the postal edition ---------------------------------------------------------------------

@dataclass
class Label:
    postal_code: str   # 〒123-4567
    address: str
    name: str          # with its honorific: 様, or 御中 for a business without a contact person


def address_labels(newsletter: Newsletter, scope: frozenset[int] | None = None, *,
                   actor) -> list[Label]:
    """Address labels of the postal edition's recipients in the areas the staff member
    serves (scope; None: all), in postal-code order.

    Reading the addresses is an export of personal data, so it is written to the audit log.
    """
    labels = []
    for s in audiences.postal_recipients(audiences.Audience.from_dict(newsletter.audience), scope):
        labels.append(Label(postal_code=show_postal(s.postal_code), address=s.address,
                            name=s.salutation))
    audit.record("newsletter.labels", "newsletter", newsletter.id, params={"people": len(labels)},
                 actor=actor)
    db.session.commit()
    return labels
