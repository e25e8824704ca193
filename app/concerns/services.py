"""The rules for concerns, one job per module; this module is the domain's public surface.

intake (taking a report), records (reading), timeline, workflow (status and assignment),
messages (notes and messages to the reporter), linking and categories. Every function that
changes something writes in one transaction, logs the action in the concern's timeline (and
the audit log where personal data is read or exported), and raises a domain error
(InvalidInput / InvalidState / NotFound) when a rule is broken. See docs/architecture.md.
"""
# ruff: noqa: F401
from __future__ import annotations

from app.concerns.categories import (
    DEFAULT_CATEGORIES,
    add_category,
    ensure_concern_categories,
    get_category,
    list_categories,
    update_category,
)
from app.concerns.helpers import (
    answer,
    ask_for_help,
    get_own_request,
    request_for_token,
    requests_for,
    requests_of_concern,
    suggest_helpers,
)
from app.concerns.intake import (
    EARLIEST,
    TEXT_LIMIT,
    Photo,
    concern_problems,
    coordinators_for,
    notify_urgent,
    photo_folder,
    receipt_address,
    reported_moment,
    submit_concern,
)
from app.concerns.linking import (
    link_concerns,
    possible_duplicates,
    related,
    unlink_concerns,
)
from app.concerns.messages import (
    add_note,
    send_message,
)
from app.concerns.records import (
    assignable_staff,
    find_by_reference,
    get_concern,
    report_of,
    reports_of,
    view_concern,
)
from app.concerns.referrals import (
    OpenReferrals,
    follow_ups,
    get_referral,
    open_referrals,
    record_figures_export,
    record_referral,
    referrals_of,
    sheet,
    suggested_agencies,
    update_referral,
)
from app.concerns.timeline import (
    add_event,
    timeline,
)
from app.concerns.workflow import (
    assign,
    can_connect,
    change_status,
    refer,
)
