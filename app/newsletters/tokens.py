"""Signed unsubscribe tokens: they never expire, and only say who and which issue."""
from __future__ import annotations

from functools import lru_cache

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer


def _serializer() -> URLSafeSerializer:
    return _serializer_for(current_app.config["SECRET_KEY"])


@lru_cache(maxsize=4)
def _serializer_for(secret_key: str) -> URLSafeSerializer:
    """Made once per key: a sender signs a link for every message."""
    return URLSafeSerializer(secret_key, salt="hotnet-unsubscribe")


def make_unsubscribe_token(supporter_id: int, newsletter_id: int | None) -> str:
    return _serializer().dumps([supporter_id, newsletter_id or 0])


def read_unsubscribe_token(token: str) -> tuple[int, int | None] | None:
    """(supporter id, newsletter id) or None for a token that was not made by us."""
    try:
        supporter_id, newsletter_id = _serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(supporter_id, int):
        return None
    return supporter_id, newsletter_id or None
