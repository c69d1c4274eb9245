"""What a failed exchange with a ComfyUI address means, in words an artist can act on.

Two kinds of failure need different next steps: ComfyUI is down or busy (start it, wait), and something else
answers at the address (a web page, another program's JSON, a proxy, a redirect): then the URL or the port is
wrong, and waiting will not help. The second kind is ``NotComfyUI``; ``comfyui_status`` and ``studio_detect``
say "not ComfyUI" for it.
"""

from __future__ import annotations

import httpx

from ategnatos_mcp.comfyui.bounded import Answer
from ategnatos_mcp.errors import UpstreamError

__all__ = [
    "NotComfyUI",
    "address_hint",
    "failed_status",
    "not_http",
    "not_json",
    "start_hint",
    "too_large",
    "too_slow",
    "unreachable",
    "unusable",
    "why",
    "wrong_shape",
]

_SERVICE = "comfyui"


class NotComfyUI(UpstreamError):
    """Something answers at the address, but it is not ComfyUI: another program, a web page, a proxy, a redirect."""


def start_hint(url: str) -> str:
    """The next step when nothing answers: start ComfyUI there, or point us at where it runs."""
    return (
        f"Start ComfyUI so it listens at {url} (for example `python main.py --listen 127.0.0.1 --port "
        f"{_port(url)}` in the ComfyUI folder), or fix ATEGNATOS_COMFYUI_URL / [comfyui] urls "
        "in ategnatos.toml, then call comfyui_status."
    )


def address_hint(url: str) -> str:
    """The next step when something other than ComfyUI answers: the address or the port is wrong."""
    return "C" + _check_address(url)[1:]


def _check_address(url: str) -> str:
    return (
        f"check the address and the port: is ComfyUI really at {url}? (Its default port is 8188; the ComfyUI "
        "console prints the address it listens on.) Fix ATEGNATOS_COMFYUI_URL or [comfyui] urls in ategnatos.toml, "
        "then call comfyui_status."
    )


def _port(url: str) -> int:
    try:
        return httpx.URL(url).port or 8188
    except httpx.InvalidURL:
        return 8188


def why(exc: BaseException) -> str:
    """Why a connection failed (never the exception's class name)."""
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return "it did not answer in time"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "the address does not start with http:// or https://"
    if isinstance(exc, (ConnectionRefusedError, httpx.ConnectError)):
        return "nothing answered at that address"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return "the connection was refused or broke off"


def _size(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB" if size >= 100_000 else f"{size:,} bytes"


def unreachable(url: str, exc: BaseException) -> UpstreamError:
    """Nothing answers, or the connection broke off."""
    return UpstreamError(
        f"ComfyUI at {url} is not reachable ({why(exc)}).", service=_SERVICE, hint=start_hint(url), retryable=True
    )


def too_slow(url: str, request: str, deadline: float) -> UpstreamError:
    """The whole exchange took longer than its deadline (a busy server, or one byte at a time)."""
    return UpstreamError(
        f"ComfyUI at {url} did not finish answering {request} within {deadline:g} s.",
        service=_SERVICE,
        hint="It may be busy loading a model; try again in a minute, or check the ComfyUI console. If it keeps "
        "happening, the address may point at something else that answers very slowly.",
        retryable=True,
    )


def too_large(url: str, request: str, limit: int) -> UpstreamError:
    """The answer passed its byte cap; the rest was not read."""
    return UpstreamError(
        f"ComfyUI at {url} sent a far larger answer to {request} than expected (over {_size(limit)}); it was not read.",
        service=_SERVICE,
        hint="If that address really is your ComfyUI, raise the matching limit in the [comfyui] section of "
        "ategnatos.toml (max_answer_bytes, max_object_info_bytes or max_download_bytes); otherwise, "
        + _check_address(url),
    )


def not_http(url: str, request: str) -> NotComfyUI:
    """Bytes came back, but not an HTTP answer (another protocol on that port)."""
    return NotComfyUI(
        f"Something answers at {url}, but it is not ComfyUI (its answer to {request} is not HTTP).",
        service=_SERVICE,
        hint=address_hint(url),
    )


def unusable(url: str, request: str) -> UpstreamError:
    """An address httpx cannot use, or an answer it cannot decode (broken compression...)."""
    return UpstreamError(
        f"ComfyUI at {url} could not be asked {request} (the address or the answer is unusable).",
        service=_SERVICE,
        hint=address_hint(url),
    )


def failed_status(url: str, answer: Answer, what: str) -> UpstreamError:
    """An answer with a status ComfyUI gives only when something else answers, or when it fails."""
    status = answer.status_code
    if 300 <= status < 400:
        target = answer.headers.get("location", "")[:200]
        moved = _moved_to(url, answer.url, target)
        return NotComfyUI(
            f"Something answers at {url}, but it is not ComfyUI: asked to {what}, it sends the request elsewhere "
            f"(HTTP {status} redirect" + (f" to {target}" if target else "") + ").",
            service=_SERVICE,
            status=status,
            hint=(f"If ComfyUI moved to {moved}, put that in ATEGNATOS_COMFYUI_URL. " if moved else "")
            + address_hint(url),
        )
    if status in (404, 405):
        return NotComfyUI(
            f"Something answers at {url}, but it is not ComfyUI (asked to {what}, it answered HTTP {status}: it does "
            "not know ComfyUI's requests).",
            service=_SERVICE,
            status=status,
            body=answer.text,
            hint=address_hint(url),
        )
    if status in (401, 403, 407):
        return UpstreamError(
            f"{url} asks for a login or refuses access (HTTP {status}) when asked to {what}.",
            service=_SERVICE,
            status=status,
            hint="Ategnatos cannot log in to a password page or proxy: reach ComfyUI without one (for a cloud "
            "instance, through remote_deploy's SSH tunnel), or " + _check_address(url),
        )
    return UpstreamError(
        f"ComfyUI at {url} failed to {what} (HTTP {status}).",
        service=_SERVICE,
        status=status,
        body=answer.text,
        hint="Look at the ComfyUI console for the error; if it keeps happening, restart ComfyUI.",
    )


def _moved_to(url: str, asked: str, location: str) -> str | None:
    """The ComfyUI address a redirect points at (``http://host`` -> ``https://host``), or None when it points
    nowhere useful (back at us: a loop; at another page: a login or a landing page)."""
    if not location or not asked:
        return None
    try:
        request = httpx.URL(asked)
        target = request.join(location)
    except httpx.InvalidURL:
        return None
    if target.query or not target.path.endswith(request.path):
        return None
    base = str(target.copy_with(query=None))[: -len(request.path) or None].rstrip("/")
    return base if base and base != url.rstrip("/") else None


def not_json(url: str, answer: Answer, what: str) -> NotComfyUI:
    """A 200 whose body is not JSON (a web page, a proxy's text)."""
    html = "html" in answer.headers.get("content-type", "").lower()
    return NotComfyUI(
        f"Something answers at {url}, but it is not ComfyUI (asked to {what}, it sent "
        f"{'a web page' if html else 'something'} instead of ComfyUI's JSON).",
        service=_SERVICE,
        status=answer.status_code,
        body=answer.text,
        hint=address_hint(url),
    )


def wrong_shape(url: str, what: str) -> NotComfyUI:
    """JSON, but not shaped like ComfyUI's answer to that request."""
    return NotComfyUI(
        f"Something answers at {url} with JSON, but it is not ComfyUI (asked to {what}, the answer does not have "
        "ComfyUI's shape).",
        service=_SERVICE,
        hint=address_hint(url),
    )
