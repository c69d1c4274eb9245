"""One create call that never rents twice: a lost answer is looked up by the tag in the instance's name first."""

from __future__ import annotations

from ategnatos_mcp.errors import UpstreamError
from ategnatos_mcp.providers.clouds.base import CreateOutcomeUnknownError, GpuProvider, ProviderHttpError
from ategnatos_mcp.providers.models import CreateRequest, Instance, InstanceStatus
from ategnatos_mcp.providers.rental.hooks import Sleep

__all__ = ["create_once", "find_by_tag"]


async def create_once(provider: GpuProvider, request: CreateRequest, *, sleep: Sleep) -> Instance:
    """Create, waiting out rate limits (at most 3 tries); an unknown outcome is resolved by listing, never retried.

    Raises:
        OfferUnavailableError: this candidate is gone or full (nothing was rented).
        UpstreamError: the provider refused, or did not confirm and does not list the instance yet.
    """
    for attempt in range(3):
        try:
            return await provider.create(request)
        except CreateOutcomeUnknownError:
            found = await find_by_tag(provider, request.tag)
            if found is not None:
                return found
            raise UpstreamError(
                f"{provider.label} did not confirm the rental, and no instance with tag {request.tag} is listed yet. "
                "To avoid paying twice, Ategnatos did not try again.",
                service=provider.name,
                hint="Call gpu_instances in a minute: if the rental appears it is picked up and shown with its cost.",
            ) from None
        except ProviderHttpError as exc:
            if exc.status != 429 or attempt == 2:
                raise
            await sleep(min(exc.retry_after if exc.retry_after is not None else 12.0, 30.0))
    raise AssertionError("unreachable")


async def find_by_tag(provider: GpuProvider, tag: str) -> Instance | None:
    """The live instance whose name carries ``tag``, or None (also when the list cannot be read)."""
    try:
        listed = await provider.list()
    except ProviderHttpError:
        return None
    return next((i for i in listed if tag in i.name and i.status is not InstanceStatus.TERMINATED), None)
