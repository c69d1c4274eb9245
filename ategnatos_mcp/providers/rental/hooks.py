"""The functions the rental side is handed from outside, so tests pass fakes: time, waiting, SSH and listeners."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from ategnatos_mcp.providers.models import Rental

__all__ = ["Clock", "EndListener", "Probe", "PublicKey", "Sleep"]

# The time now (tests pass a clock they move by hand).
Clock = Callable[[], datetime]
# Wait this many seconds (tests pass one that only moves their clock).
Sleep = Callable[[float], Awaitable[None]]
# (host, port, user, identity) -> SSH answered (and its host key is pinned).
Probe = Callable[[str, int, str, str], Awaitable[bool]]
# The SSH public key a new instance lets in.
PublicKey = Callable[[], Awaitable[str]]
# Hears about each rental that ended (terminated, stopped, gone, boot timeout, hour cap), once, after it is recorded.
EndListener = Callable[[Rental], Awaitable[None]]
# (done so far, total or None, message) -> reported to the user while a long call works.
