"""The API key format: "rag_" + id + "_" + secret, with 32 random bytes of secret.

The id (visible, 12 hex digits) finds the key's record; only the SHA-256 of the whole key is
stored, so a leaked Redis holds nothing that opens the API. A slow hash buys nothing for a
256-bit random secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "rag_"
_ID_HEX = 12
_FORMAT = re.compile(rf"^{PREFIX}([0-9a-f]{{{_ID_HEX}}})_([A-Za-z0-9_-]{{16,}})$")


def new_token() -> tuple[str, str]:
    """A fresh (key id, key). The key is shown once and never stored."""
    key_id = secrets.token_hex(_ID_HEX // 2)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(token: str) -> str | None:
    """The id part of a well-formed key, else None."""
    match = _FORMAT.match(token)
    return match.group(1) if match else None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def matches(token: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(token), stored_digest)


def masked(key_id: str) -> str:
    """How listings show a key: its visible prefix only."""
    return f"{PREFIX}{key_id}_" + "*" * 8
