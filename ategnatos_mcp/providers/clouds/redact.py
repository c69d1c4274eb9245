"""Credential redaction for provider text: the one place that keeps API keys out of answers, errors and logs.

A provider, or a proxy in front of it, may echo our request back in an error body: the ``Authorization`` header,
the URL with an ``api_key=`` parameter. Two layers, both applied by ``HttpApi`` where provider text enters:

- by value: every body we read has our own keys (the client's ``Authorization`` header, decoded Basic credentials,
  key-like query parameters) replaced before anything parses it, so no later message, exception or log can hold them;
- by shape: text we quote from an error (the short body and the provider's detail) also loses anything that looks
  like a credential (``Bearer ...``, ``Basic ...``, ``api_key=...``, ``key=...``, ``token=...``, an
  ``Authorization`` header echo), even a key we do not know.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

import httpx

__all__ = ["REDACTED", "client_secrets", "redact", "redact_bytes"]

REDACTED = "[redacted]"

# Shorter values are not secrets worth hunting (and replacing them would garble ordinary text).
_MIN_SECRET = 8
_SECRET_PARAMS = ("api_key", "apikey", "key", "token", "access_token", "secret")
_SHAPES = [
    # An echoed header, quoted or not: 'Authorization: Bearer x', '"authorization": "Basic x"'.
    re.compile(r"""(?i)(\bauthorization["']?\s*[:=]\s*["']?)(?:(?:bearer|basic|token)\s+)?[^\s"',;}]+"""),
    # A token after the scheme word: long, and not a plain lowercase word ("basic information" stays).
    re.compile(r"\b((?i:bearer|basic))(\s+)(?=[A-Za-z0-9._~+/=-]*[0-9A-Z=_])[A-Za-z0-9._~+/=-]{8,}"),
    # Query or form parameters: ?api_key=..., &key=..., token=...
    re.compile(r"(?i)(\b(?:api[_-]?key|access[_-]?token|key|token|secret)=)[^&\s\"'<>]+"),
    # JSON or header spellings: "api_key": "...", x-api-key: ...
    re.compile(r"""(?i)(["']?\b(?:x-)?api[_-]?key["']?\s*:\s*["']?)[^\s"',;}]+"""),
]


def client_secrets(http: httpx.AsyncClient) -> list[str]:
    """The credentials an injected client sends on every request (from its default headers and parameters)."""
    found: list[str] = []
    auth = http.headers.get("Authorization", "")
    if auth:
        found.append(auth)
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if token:
            found.append(token)
        if scheme.lower() == "basic" and token:
            try:
                user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            found.extend(part for part in (user, password) if part)
    found.extend(http.headers[name] for name in ("X-Api-Key", "Api-Key") if http.headers.get(name))
    found.extend(value for name, value in http.params.multi_items() if name.lower() in _SECRET_PARAMS)
    unique = {s for s in found if len(s) >= _MIN_SECRET}
    return sorted(unique, key=len, reverse=True)  # longest first, so a header is replaced before its token


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without our secrets (by value, also URL-encoded) and without anything shaped like a credential."""
    for secret in secrets:
        if len(secret) < _MIN_SECRET:
            continue
        for form in _forms(secret):
            text = text.replace(form, REDACTED)
    text = _SHAPES[0].sub(lambda m: m.group(1) + REDACTED, text)
    text = _SHAPES[1].sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    text = _SHAPES[2].sub(lambda m: m.group(1) + REDACTED, text)
    return _SHAPES[3].sub(lambda m: m.group(1) + REDACTED, text)


def redact_bytes(body: bytes, secrets: Iterable[str]) -> bytes:
    """A raw body with our secrets replaced by value (nothing else changes, so it still parses)."""
    for secret in secrets:
        if len(secret) < _MIN_SECRET:
            continue
        for form in _forms(secret):
            raw = form.encode("utf-8")
            if raw in body:
                body = body.replace(raw, REDACTED.encode("ascii"))
    return body


def _forms(secret: str) -> list[str]:
    """The spellings a secret can be echoed in: as is, URL-encoded, JSON-escaped."""
    encoded = str(httpx.QueryParams({"k": secret})).removeprefix("k=")
    return sorted({secret, encoded, secret.replace("/", "\\/")}, key=len, reverse=True)
