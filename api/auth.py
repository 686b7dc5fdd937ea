"""Bearer keys: with any key configured, every API route wants ``Authorization: Bearer KEY``.

The keys are ``RAG_API_KEYS`` (comma-separated) and, when the browser app has a
login (``--auth USER:PASSWORD`` or ``RAG_AUTH``), that login's password: a server
started with ``--auth`` alone is never left open to the API.
"""

from __future__ import annotations

import hmac
from typing import Iterable

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .problems import Problem

# auto_error off: a missing or malformed header is answered by require_key, as a problem object.
_bearer = HTTPBearer(auto_error=False, description="RAG_API_KEYS, or the password of --auth USER:PASSWORD")


def api_keys(keys: Iterable[str], login: str | None = None) -> tuple[str, ...]:
    """The keys the API accepts: ``keys``, plus the password of a ``USER:PASSWORD`` login."""
    out = [k for k in keys if k]
    if login:
        _user, sep, password = login.partition(":")
        if sep and password:
            out.append(password)
    return tuple(dict.fromkeys(out))


def key_guard(keys: tuple[str, ...]):
    """A dependency that lets a request through only with one of ``keys`` (all, when there are none)."""
    encoded = [k.encode() for k in keys]

    async def require_key(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        if not encoded:
            return
        given = (credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else "").encode()
        # Compare with every key in constant time, so timing tells nothing about a key.
        if not any([hmac.compare_digest(given, k) for k in encoded]):
            raise Problem(401, "This API needs a key: send the header `Authorization: Bearer KEY` "
                               "(a key of RAG_API_KEYS, or the password of --auth).",
                          code="unauthorized", headers={"WWW-Authenticate": "Bearer"})

    return require_key
