"""Signed unsubscribe tokens: they never expire, and only say who and which issue."""
from __future__ import annotations

from functools import lru_cache

from flask import current_app
from itsdangerous import BadSignature, Serializer, URLSafeSerializer
from itsdangerous.encoding import base64_encode


def _serializer() -> URLSafeSerializer:
    return _serializer_for(current_app.config["SECRET_KEY"])


class _TokenSerializer(URLSafeSerializer):
    """itsdangerous's URL-safe tokens, made without trying zlib first: the payload is two
    ids, which compression does not shorten (for ids of a registry's size the tokens are the
    very same), and the sender signs one for every message. Tokens made compressed by earlier
    versions are read as before."""

    def dump_payload(self, obj) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


@lru_cache(maxsize=4)
def _serializer_for(secret_key: str) -> URLSafeSerializer:
    """Made once per key: a sender signs a link for every message."""
    return _TokenSerializer(secret_key, salt="hotnet-unsubscribe")


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
