"""Absolute links for e-mails, built from HOTNET_BASE_URL (also outside a request)."""
from __future__ import annotations

from flask import current_app


def external_url(endpoint: str, **values) -> str:
    """`https://host/path` of an endpoint, for links that leave the site in a message."""
    base = current_app.config["HOTNET_BASE_URL"].rstrip("/")
    adapter = current_app.url_map.bind("localhost")
    return base + adapter.build(endpoint, values)
