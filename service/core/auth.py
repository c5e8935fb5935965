"""The API key (``CNNSERVE_API_KEY``), checked alike by every protocol front end.

Clients send it as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``: HTTP headers, or the
gRPC metadata of the same names (lower case), as ``tritonclient`` and KServe's clients send headers.
"""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from .errors import Unauthorized

__all__ = ["bearer_credentials", "check_api_key"]


def bearer_credentials(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (any case of "Bearer"), else None, as ``HTTPBearer`` reads it."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    credentials = credentials.strip()
    if not (scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


def check_api_key(key: SecretStr | None, api_key: str | None, bearer: str | None) -> None:
    """401 unless ``key`` is None or one of the given values is it (compared in constant time)."""
    if key is None:
        return
    expected = key.get_secret_value().encode()
    for given in (api_key, bearer):
        if given is not None and hmac.compare_digest(given.encode(), expected):
            return
    raise Unauthorized()
