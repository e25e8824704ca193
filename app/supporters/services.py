"""The registry's services, one job per module; this module is the domain's public surface.

records (fields, checks, creating and changing), applications, erasure, history, search,
addresses (those that bounce) and categories. Import from here; see docs/architecture.md.
"""
# ruff: noqa: F401
from __future__ import annotations

from app.supporters.addresses import (
    MOBILE_CARRIER_DOMAINS,
    confirm_email,
    held_addresses,
    hold_email,
    is_mobile_carrier,
    mobile_context,
    sender_domain,
)
from app.supporters.applications import (
    application_problems,
    apply,
    approve,
    decline,
)
from app.supporters.categories import (
    DEFAULT_CATEGORIES,
    add_category,
    category_choices,
    ensure_business_categories,
    list_categories,
    rename_category,
)
from app.supporters.erasure import (
    withdraw,
)
from app.supporters.history import (
    history,
    record_change,
)
from app.supporters.records import (
    EDITABLE,
    ERASED_STATUSES,
    LIVE_STATUSES,
    SELF_EDITABLE,
    add_supporter,
    area_of,
    create_supporter,
    find_by_email,
    find_by_name_and_phone,
    find_registered,
    find_registered_keys,
    get_supporter,
    live_per_district,
    name_phone_key,
    normalise,
    possible_duplicates,
    update_supporter,
    validate,
    view_supporter,
)
from app.supporters.search import (
    LIST_COLUMNS,
    SORTS,
    Page,
    RegistryFilters,
    area_totals,
    count,
    in_scope,
    iter_filtered,
    search,
    search_terms_for,
    sort_key_for,
    where_matches,
    where_place_and_kind,
)
