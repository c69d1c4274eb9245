"""Teardown that does not give up, within bounds: retry on 429/5xx until the provider confirms the instance is gone,
but never longer than the per-provider time limit (``[gpu] teardown_seconds``), with progress while it works."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import anyio

from ategnatos_mcp.errors import AtegnatosError, InvalidRequestError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.providers.clouds.base import GpuProvider, ProviderHttpError
from ategnatos_mcp.providers.models import InstanceStatus, Rental
from ategnatos_mcp.providers.rental.hooks import Sleep
from ategnatos_mcp.providers.rental.results import TeardownItem, TeardownResult

__all__ = ["STILL_BILLING_WHEN_STOPPED", "bounded_teardown", "teardown_result", "terminate_confirmed"]

logger = logging.getLogger("ategnatos_mcp.providers")

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


async def bounded_teardown(
    groups: dict[str, list[Rental]],
    one: Callable[[Rental], Awaitable[TeardownItem]],
    *,
    labels: dict[str, str],
    seconds: float,
    progress: Progress | None = None,
) -> dict[str, TeardownItem]:
    """Tear down each provider's rentals one after another, the providers side by side, each within ``seconds``.

    A rental whose provider did not finish in time comes back as ``unconfirmed`` (it may still bill). Progress is
    reported at the start, after each rental and every few seconds while anything is still pending.
    """
    done: dict[str, TeardownItem] = {}
    total = sum(len(rentals) for rentals in groups.values())
    started = anyio.current_time()
    last = -1.0
    waiting = set(groups)

    async def report(message: str) -> None:
        nonlocal last
        if progress is None:
            return
        last = max(anyio.current_time() - started, last + 0.001)  # progress must grow with every notification
        await progress(round(last, 3), seconds, message)

    async def provider_part(name: str, rentals: list[Rental]) -> None:
        with anyio.move_on_after(seconds):
            for rental in rentals:
                try:
                    done[rental.key] = await one(rental)
                except AtegnatosError as exc:  # one refusal (Lambda cannot stop, a bad key) must not stop the rest
                    done[rental.key] = TeardownItem(
                        key=rental.key,
                        outcome="failed",
                        message=str(exc).replace("\n", " "),
                        still_billing=STILL_BILLING_WHEN_STOPPED["lambda"]
                        if rental.provider == "lambda" and isinstance(exc, InvalidRequestError)
                        else "It may still be billing.",
                    )
                await report(f"{rental.key}: {done[rental.key].outcome} ({len(done)} of {total} done)")
        for rental in rentals:
            if rental.key not in done:
                done[rental.key] = _unconfirmed(rental, labels.get(name, name), seconds)
        waiting.discard(name)

    async def heartbeat() -> None:
        while True:
            await anyio.sleep(min(5.0, seconds / 4))
            names = ", ".join(labels.get(name, name) for name in sorted(waiting))
            await report(f"Still waiting for {names} to confirm ({len(done)} of {total} done).")

    names = ", ".join(labels.get(name, name) for name in groups)
    await report(f"Tearing down {total} instance(s) at {names}; at most {seconds:g} s per provider.")
    async with anyio.create_task_group() as group:
        group.start_soon(heartbeat)
        async with anyio.create_task_group() as parts:
            for name, rentals in groups.items():
                parts.start_soon(provider_part, name, rentals)
        group.cancel_scope.cancel()
    return done


def _unconfirmed(rental: Rental, label: str, seconds: float) -> TeardownItem:
    return TeardownItem(
        key=rental.key,
        outcome="unconfirmed",
        still_billing="It may still be billing.",
        message=f"{label} did not confirm within {seconds:g} seconds (it did not answer, or kept failing).",
    )


def teardown_result(items: list[TeardownItem]) -> TeardownResult:
    """The answer: each outcome, the final cost, and the exact call that retries what is not confirmed."""
    unsure = [item.key for item in items if item.outcome in ("unconfirmed", "failed")]
    next_step = ""
    if unsure:
        keys = json.dumps(unsure)
        next_step = (
            f"Not confirmed yet: {', '.join(unsure)}. Call gpu_teardown with keys={keys} again in a few minutes; "
            "if it still cannot confirm, end them in the provider's console (they may be billing until then)."
        )
    return TeardownResult(
        items=items,
        total_final_usd=round(sum(item.final_usd or 0 for item in items), 2),
        unconfirmed=unsure,
        next_step=next_step,
    )
