"""The one provider protocol, its provider-specific errors, and the small HTTP helper the clouds share."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import anyio
import httpx

from ategnatos_mcp.errors import UpstreamError
from ategnatos_mcp.providers.clouds.redact import client_secrets, redact, redact_bytes
from ategnatos_mcp.providers.models import Balance, CreateRequest, GpuOffer, Instance, OfferQuery, ProviderName

__all__ = [
    "AnswerLimits",
    "CreateOutcomeUnknownError",
    "GpuProvider",
    "HttpApi",
    "OfferUnavailableError",
    "PaymentRequiredError",
    "ProviderHttpError",
]

logger = logging.getLogger("ategnatos_mcp.providers")


@runtime_checkable
class GpuProvider(Protocol):
    """What every GPU cloud (and this machine) offers. Prices are USD per hour; ids are the provider's."""

    @property
    def name(self) -> ProviderName:
        """``runpod``, ``vast``, ``lambda`` or ``local``."""
        ...

    @property
    def label(self) -> str:
        """The provider's name for people."""
        ...

    async def offers(self, query: OfferQuery) -> list[GpuOffer]:
        """Rentable configurations matching the query (unsorted)."""
        ...

    async def quote(self, offer: GpuOffer) -> GpuOffer | None:
        """The same offer with today's price, or None if it is gone."""
        ...

    async def create(self, request: CreateRequest) -> Instance:
        """Rent the offer. Raises OfferUnavailableError (try another) or CreateOutcomeUnknownError (reconcile)."""
        ...

    async def get(self, instance_id: str) -> Instance | None:
        """The instance now, or None if the provider no longer knows it."""
        ...

    async def list(self) -> list[Instance]:
        """Every instance on the account, ours or not."""
        ...

    async def stop(self, instance_id: str) -> None:
        """Release the GPU but keep the disk (which may keep billing)."""
        ...

    async def terminate(self, instance_id: str) -> None:
        """Destroy the instance; an instance already gone counts as done."""
        ...

    async def balance(self) -> Balance | None:
        """Money left, where the API has it."""
        ...

    async def register_ssh_key(self, public_key: str) -> str:
        """Make the key usable for instances created from now on; returns the provider's name or id for it."""
        ...


class ProviderHttpError(UpstreamError):
    """A provider call failed; ``retry_after`` is the wait the provider asked for, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class OfferUnavailableError(ProviderHttpError):
    """The offer vanished or has no capacity right now; nothing was rented. Another candidate may work."""


class PaymentRequiredError(ProviderHttpError):
    """The provider refuses to rent because of the account's money (no credit, no card, inactive)."""


class CreateOutcomeUnknownError(ProviderHttpError):
    """The create call failed in a way that may still have rented something (timeout, 5xx)."""


@dataclass(frozen=True)
class AnswerLimits:
    """How much of a provider's answer we read, and for how long, before giving up with a plain error."""

    seconds: float = 60.0
    max_bytes: int = 8 * 1024 * 1024


# The body we hand on is already decoded and whole: these would describe the wire form, not it.
_WIRE_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


def _short_body(response: httpx.Response) -> str:
    try:
        return response.text[:300]
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""


class _TooBigError(Exception):
    pass


class HttpApi:
    """An injected ``httpx.AsyncClient`` (auth headers already set) plus uniform error mapping.

    Every answer is read under a size cap and a total deadline (``limits``), and our own credentials are replaced
    in its body before anything parses it; error text quoted from it is redacted again by shape.
    """

    def __init__(
        self, http: httpx.AsyncClient, *, service: str, label: str, limits: AnswerLimits | None = None
    ) -> None:
        self.http = http
        self.service = service
        self.label = label
        self.limits = limits or AnswerLimits()
        self._secrets = client_secrets(http)

    def redact(self, text: str) -> str:
        """Provider text without our keys or anything shaped like a credential."""
        return redact(text, self._secrets)

    async def call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        ok_missing: bool = False,
        timeout: float | None = None,
    ) -> httpx.Response | None:
        """Send one request. Returns None for 404/410 when ``ok_missing``; raises ProviderHttpError otherwise."""
        seconds = self.limits.seconds
        try:
            with anyio.fail_after(seconds):
                response = await self._fetch(method, url, json=json, params=params, timeout=timeout)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ProviderHttpError(
                f"{self.label} did not answer in time (Ategnatos waits at most {seconds:g} seconds for an answer).",
                service=self.service,
                hint="Check your internet connection or the provider's status page, then try again.",
                retryable=True,
            ) from exc
        except _TooBigError:
            raise ProviderHttpError(
                f"{self.label} sent an answer larger than {self.limits.max_bytes / 1_048_576:g} MB, far more than "
                "its API ever sends, so Ategnatos stopped reading it.",
                service=self.service,
                hint=f"Check that the {self.label} API address in the settings is right (a proxy or a wrong address "
                "answers like this), then try again.",
            ) from None
        except httpx.TransportError as exc:
            raise ProviderHttpError(
                f"Could not reach {self.label} (the connection failed before an answer came).",
                service=self.service,
                hint="Check your internet connection, then try again.",
                retryable=True,
            ) from exc
        if response.status_code in (404, 410) and ok_missing:
            return None
        if response.status_code >= 400:
            raise self.error(response)
        return response

    async def _fetch(
        self, method: str, url: str, *, json: Any, params: dict[str, str] | None, timeout: float | None
    ) -> httpx.Response:
        """Read the whole answer, at most ``max_bytes`` of it, with our credentials taken out of the body."""
        limit = self.limits.max_bytes
        async with self.http.stream(
            method,
            url,
            json=json,
            params=params,
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        ) as streamed:
            declared = streamed.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _TooBigError
            chunks: list[bytes] = []
            size = 0
            async for chunk in streamed.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise _TooBigError
                chunks.append(chunk)
        headers = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _WIRE_HEADERS]
        body = redact_bytes(b"".join(chunks), self._secrets)
        return httpx.Response(streamed.status_code, headers=headers, content=body, request=streamed.request)

    def error(
        self, response: httpx.Response, message: str | None = None, kind: type[ProviderHttpError] | None = None
    ) -> ProviderHttpError:
        """An UpstreamError describing a failed response in plain words (provider text redacted)."""
        status = response.status_code
        body = self.redact(_short_body(response))
        if status in (401, 403):
            text = message or f"{self.label} refused the API key (HTTP {status})."
            hint = f"Check that your {self.label} API key is set, current and allowed to manage instances."
        elif status == 429:
            text = message or f"{self.label} is rate-limiting us (too many requests)."
            hint = "Wait a minute and try again."
        elif status >= 500:
            text = message or f"{self.label} had an internal problem (HTTP {status})."
            hint = "Try again in a few minutes; check the provider's status page if it persists."
        else:
            detail = self.redact(provider_detail(response))
            text = message or f"{self.label} rejected the request (HTTP {status}): {detail}"
            hint = "This is likely a bug in Ategnatos; please report it with the message above."
        return (kind or ProviderHttpError)(
            text,
            service=self.service,
            status=status,
            body=body,
            hint=hint,
            retryable=status == 429 or status >= 500,
            retry_after=retry_after(response),
        )


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the provider asks us to wait (RunPod sends an integer Retry-After; Vast and Lambda send none)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def provider_detail(response: httpx.Response) -> str:
    """The human part of an error body, whichever envelope the provider uses."""
    try:
        data = response.json()
    except ValueError:
        return _short_body(response)[:200]
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("code") or "")[:200]
        for key in ("detail", "msg", "message", "title"):
            if data.get(key):
                return str(data[key])[:200]
        if isinstance(error, str):
            return error[:200]
    return _short_body(response)[:200]


def error_code(response: httpx.Response) -> str:
    """The machine-readable error code (Lambda ``error.code``, Vast ``error``), or ''."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or "")
    return str(error or "")
