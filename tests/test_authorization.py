"""Who may open what: every route of the app × every role, from one table (issue 9).

The table is checked against `app.url_map`: a new route without an entry here fails the suite,
so nobody can add a page and forget to decide who may see it.
"""
from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select
from werkzeug.routing import AnyConverter

from app.concerns import services as concerns
from app.concerns.models import ConcernCategory
from app.extensions import db
from app.formatting import today_tokyo
from tests.conftest import district, login_staff, login_supporter, make_supporter

PUBLIC, SUPPORTER, STAFF, ADMIN = "public", "supporter", "staff", "admin"

# Pages of signing in, which may send a signed-out visitor on to another sign-in page.
SIGN_IN_ENDPOINTS = {"supporters.request_link", "supporters.link_sent", "supporters.link_signin"}

ACCESS = {
    # site
    "static": PUBLIC, "site.home": PUBLIC, "site.healthz": PUBLIC, "site.set_language": PUBLIC,
    "health.ready": PUBLIC, "health.status_page": ADMIN,
    # accounts
    "accounts.login": PUBLIC, "supporters.request_link": PUBLIC, "supporters.link_sent": PUBLIC,
    "supporters.link_signin": PUBLIC, "accounts.logout": PUBLIC,
    "accounts.admin_home": ADMIN, "accounts.staff_list": ADMIN, "accounts.staff_new": ADMIN,
    "accounts.staff_edit": ADMIN,
    "accounts.staff_cover": ADMIN, "accounts.staff_cover_end": ADMIN,
    # audit, geography, mail
    "audit.log": ADMIN, "geography.overview": ADMIN, "geography.station_contact": ADMIN,
    "outbox.undelivered": ADMIN, "outbox.retry": ADMIN,
    "mailcatcher.inbox": STAFF, "mailcatcher.message": STAFF,
    # concerns
    "concerns.report": PUBLIC, "concerns.report_thanks": PUBLIC,
    "concerns.my_reports": SUPPORTER, "concerns.my_report": SUPPORTER,
    "concerns.dashboard": STAFF, "concerns.export_csv": STAFF, "concerns.staff_new": STAFF,
    "concerns.staff_detail": STAFF, "concerns.photo": STAFF, "concerns.change_status": STAFF,
    "concerns.assign": STAFF, "concerns.add_note": STAFF, "concerns.send_message": STAFF,
    "concerns.link": STAFF, "concerns.unlink": STAFF, "concerns.categories": ADMIN,
    "concerns.add_referral": STAFF, "concerns.update_referral": STAFF,
    "concerns.referral_sheet": STAFF, "concerns.follow_ups": STAFF,
    "concerns.ask_for_help": STAFF, "concerns.referral_figures_csv": STAFF, "concerns.answer_mine": SUPPORTER, "concerns.help_answer": PUBLIC,
    # partners
    "partners.index": STAFF, "partners.show": STAFF, "partners.export": STAFF,
    "partners.new": ADMIN, "partners.edit": ADMIN, "partners.import_csv": ADMIN,
    # newsletters
    "newsletters.public_archive": PUBLIC, "newsletters.public_issue": PUBLIC,
    "newsletters.image": PUBLIC, "newsletters.unsubscribe": PUBLIC,
    "newsletters.index": STAFF, "newsletters.new": STAFF, "newsletters.edit": STAFF,
    "newsletters.show": STAFF, "newsletters.progress_json": STAFF, "newsletters.preview": STAFF,
    "newsletters.preview_html": STAFF, "newsletters.send_test": STAFF, "newsletters.act": STAFF,
    "newsletters.schedule": STAFF, "newsletters.print_edition": STAFF,
    "newsletters.labels": STAFF, "newsletters.confirm_action": STAFF,
    "newsletters.copy": STAFF, "newsletters.audience_count": STAFF,
    "newsletters.held_addresses": STAFF,
    # supporters
    "supporters.apply": PUBLIC, "supporters.apply_business": PUBLIC,
    "supporters.apply_thanks": PUBLIC, "supporters.privacy": PUBLIC,
    "supporters.me": SUPPORTER, "supporters.me_withdraw": SUPPORTER, "supporters.withdrawn": PUBLIC,
    "supporters.confirm_email": SUPPORTER,
    "supporters.staff_list": STAFF, "supporters.export_csv": STAFF, "supporters.staff_new": STAFF,
    "supporters.staff_detail": STAFF, "supporters.staff_edit": STAFF,
    "supporters.staff_decide": STAFF, "supporters.staff_withdraw": STAFF,
    "supporters.staff_decline_confirm": STAFF,
    "supporters.import_upload": STAFF, "supporters.import_decide": STAFF,
    "supporters.import_review": STAFF, "supporters.print_list": STAFF,
    "supporters.categories": ADMIN,
    # trainings
    "trainings.index": PUBLIC, "trainings.calendar": PUBLIC, "trainings.session": PUBLIC,
    "trainings.visitor": PUBLIC, "trainings.visitor_thanks": PUBLIC,
    "trainings.sign_up": SUPPORTER, "trainings.cancel_mine": SUPPORTER, "trainings.mine": SUPPORTER,
    "trainings.staff_index": STAFF, "trainings.staff_new": STAFF, "trainings.staff_edit": STAFF,
    "trainings.staff_training": STAFF, "trainings.staff_session": STAFF,
    "trainings.staff_session_edit": STAFF, "trainings.staff_session_cancel": STAFF,
    "trainings.staff_sign_up": STAFF, "trainings.staff_cancel": STAFF,
    "trainings.staff_attendance": STAFF, "trainings.roster": STAFF,
}

ALLOWED = {PUBLIC: {"anonymous", "supporter", "coordinator", "admin"},
           SUPPORTER: {"supporter"}, STAFF: {"coordinator", "admin"}, ADMIN: {"admin"}}


def test_every_route_has_an_entry_in_the_table(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - ACCESS.keys() == set(), "add the new routes to ACCESS"
    assert ACCESS.keys() - endpoints == set(), "remove routes that no longer exist"


@pytest.fixture
def ids(app, coordinator, admin, mailbox, tmp_path):
    """One of everything a URL can point to, in the coordinator's own area."""
    from app.accounts.services import grant_cover
    from app.newsletters import services as newsletters
    from app.supporters.models import SupporterImport
    from app.trainings import services as trainings
    from tests.test_trainings import make_session

    app.config["HOTNET_MAILCATCHER_DIR"] = str(tmp_path)
    (tmp_path / "1700000000000000000-abcdef12.eml").write_bytes(
        b"Subject: x\r\nTo: a@example.jp\r\nFrom: b@example.jp\r\n\r\nhello\r\n")
    supporter = make_supporter(email="role@example.jp", delivery="email")
    category = db.session.scalar(select(ConcernCategory).order_by(ConcernCategory.position))
    concern = concerns.submit_concern({"category_id": category.id, "body": "表の確認",
                                       "district_id": district("d01").id, "urgency": "normal"},
                                      reporter=supporter)
    other = concerns.submit_concern({"category_id": category.id, "body": "二件目",
                                     "district_id": district("d01").id, "urgency": "normal"})
    session = make_session(kind="registration", capacity=5)
    registration = trainings.sign_up(session.id, supporter, actor=None)
    newsletter = newsletters.save_draft(None, {"layout": "regular", "number": "", "title": "表",
                                               "subject": "表", "body_md": "本文"},
                                        newsletters.audiences.Audience(), coordinator.id)
    from app.accounts.services import create_staff
    colleague = create_staff("colleague@example.jp", "同僚 一人", "colleague-password", "coordinator",
                             area_ids=[district("d20").area_id], actor=None)
    cover = grant_cover(admin, colleague, district("d01").area_id,
                        today_tokyo() + timedelta(days=1))
    pending = SupporterImport(staff_id=admin.id, filename="x.csv", encoding="utf-8",
                              content="氏名,地区\n")
    db.session.add(pending)
    from app.partners.services import save_agency
    agency = save_agency(None, {"kind": "houkatsu", "name": "中部地域包括支援センター"}, actor=admin)
    referral = concerns.record_referral(concern, {
        "agency_id": agency.id, "referred_on": today_tokyo(), "method": "phone",
        "consent": "consent"}, actor=coordinator)
    supporter.can_help = ["watch"]
    db.session.commit()
    help_request = concerns.ask_for_help(concern, supporter.id, "watch", "見守りのお願い",
                                         actor=coordinator)
    return {"agency_id": agency.id, "referral_id": referral.id, "request_id": help_request.id,"concern_id": concern.id, "other_id": other.id, "supporter_id": supporter.id,
            "session_id": session.id, "registration_id": registration.id,
            "training_id": session.training_id, "newsletter_id": newsletter.id,
            "user_id": colleague.id, "cover_id": cover.id, "import_id": pending.id,
            "category_id": category.id, "message_id": 1, "reference": concern.reference,
            "token": secrets.token_urlsafe(16), "key": "1700000000000000000-abcdef12",
            "filename": "hotnet.css", "supporter": supporter,
            "station_id": district("d01").area.station_id}


def url_for_rule(rule, ids) -> str:
    values = {}
    for name in rule.arguments:
        converter = rule._converters.get(name)
        if isinstance(converter, AnyConverter):
            values[name] = sorted(converter.items)[0]
        else:
            values[name] = ids[name]
    return rule.build(values, append_unknown=False)[1]


def clients(app, ids, coordinator, admin, mailbox):
    made = {"anonymous": app.test_client()}
    made["supporter"] = app.test_client()
    login_supporter(made["supporter"], ids["supporter"], mailbox)
    made["coordinator"] = app.test_client()
    login_staff(made["coordinator"], coordinator)
    made["admin"] = app.test_client()
    login_staff(made["admin"], admin)
    return made


def token_of(client) -> str:
    html = client.get("/privacy").get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def test_every_route_answers_each_role_as_the_table_says(app, ids, coordinator, admin, mailbox):
    users = clients(app, ids, coordinator, admin, mailbox)
    rules = [rule for rule in app.url_map.iter_rules()]
    checked = 0
    # Refusals first (they change nothing), then what each allowed role gets.
    for allowed_pass in (False, True):
        # Signing out comes last, so that each role stays signed in for the rest.
        for rule in sorted(rules, key=lambda r: (r.endpoint == "accounts.logout", r.rule)):
            access = ACCESS[rule.endpoint]
            url = url_for_rule(rule, ids)
            method = "GET" if "GET" in rule.methods else "POST"
            for role, client in users.items():
                allowed = role in ALLOWED[access]
                if allowed != allowed_pass:
                    continue
                if method == "GET":
                    response = client.get(url)
                else:
                    response = client.post(url, data={"csrf_token": token_of(client)})
                code = response.status_code
                where = f"{method} {url} as {role}"
                # The readiness check answers 503 when a part is down (here: no scheduler).
                assert code < 500 or (rule.endpoint == "health.ready" and code == 503), where
                if allowed:
                    assert code != 403, where
                    if code == 302:
                        assert "/login" not in response.headers["Location"] or \
                            rule.endpoint.startswith("accounts.") or \
                            rule.endpoint in SIGN_IN_ENDPOINTS, where
                elif role == "anonymous":  # to the sign-in page (staff: password; supporter: link)
                    assert code == 302 and "/login" in response.headers["Location"], where
                else:
                    assert code == 403, where
                checked += 1
    assert checked >= len(ACCESS) * 4 - 10
