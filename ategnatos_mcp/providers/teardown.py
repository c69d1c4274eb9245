"""Teardown that does not give up: retry on 429/5xx until the provider confirms the instance is gone."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ategnatos_mcp.providers.base import GpuProvider, ProviderHttpError
from ategnatos_mcp.providers.models import InstanceStatus

__all__ = ["STILL_BILLING_WHEN_STOPPED", "terminate_confirmed"]

logger = logging.getLogger("ategnatos_mcp.providers")

Sleep = Callable[[float], Awaitable[None]]

STILL_BILLING_WHEN_STOPPED = {
    "runpod": "The GPU is released, but a volume disk keeps billing (about $0.20/GB per month) and the "
    "container disk is wiped. Terminate it when you no longer need the files.",
    "vast": "The GPU is released, but the disk keeps billing at the host's storage price until you terminate it; "
    "restarting needs the same GPU on the same host to be free.",
    "lambda": "Lambda cannot stop instances; only terminating ends the bill.",
    "local": "Nothing is billed on your own computer.",
}


async def terminate_confirmed(
    provider: GpuProvider, instance_id: str, *, sleep: Sleep, attempts: int = 8, max_wait: float = 30.0
) -> bool:
    """Terminate and confirm with a read-back. True if gone; False if the provider never said it was gone.

    Retries rate limits and server errors (Vast sends no Retry-After, so back off ourselves).

    Raises:
        UpstreamError: a non-retryable refusal (bad key, forbidden).
    """
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            await provider.terminate(instance_id)
            seen = await provider.get(instance_id)
        except ProviderHttpError as exc:
            if not exc.retryable or attempt == attempts:
                raise
            wait = exc.retry_after if exc.retry_after is not None else delay
            logger.info("teardown of %s:%s retry %d after %s", provider.name, instance_id, attempt, exc.status)
            await sleep(min(wait, max_wait))
            delay = min(delay * 2, max_wait)
            continue
        if seen is None or seen.status is InstanceStatus.TERMINATED:
            return True
        await sleep(min(delay, max_wait))
        delay = min(delay * 2, max_wait)
    return False
