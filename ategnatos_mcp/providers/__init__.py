"""GPU clouds behind one protocol (RunPod, Vast.ai, Lambda, this machine), with quotes, consent, budgets,
a spend ledger, reconcile and teardown. No GPU is rented without a fresh quote and an explicit yes.

Use ``open_gpu_service(settings, store, stack, clock=...)`` for the real thing; tests build ``GpuService``
with providers over a mocked ``httpx.AsyncClient`` and a fake SSH probe. Import every name from here.

Inside, one folder per concern:
- ``models.py``: the shared vocabulary (offers, instances, quotes, rentals, the ``gpu.json`` document);
- ``clouds/``: each cloud's own API behind ``GpuProvider``, GPU names, container images, secret redaction;
- ``rental/``: ``GpuService`` = offers + a ``Renter`` (quote and yes to a rental) + a ``Fleet`` (boot watch,
  billed-price check, reconcile, teardown), with quotes, consent, budgets, the ledger and the answers;
- ``setup/``: deploying ComfyUI or a training backend on a rented instance, and its idle watchdog;
- ``factory.py``: the real clouds (one HTTP client per key) and the real service (SSH through ``remote``).
"""

from ategnatos_mcp.providers.clouds.base import (
    AnswerLimits,
    CreateOutcomeUnknownError,
    GpuProvider,
    OfferUnavailableError,
    PaymentRequiredError,
    ProviderHttpError,
)
from ategnatos_mcp.providers.clouds.gpus import gpu_matches, unify_gpu_name
from ategnatos_mcp.providers.clouds.lambdalabs import LambdaProvider
from ategnatos_mcp.providers.clouds.local import LocalProvider
from ategnatos_mcp.providers.clouds.runpod import RunPodProvider
from ategnatos_mcp.providers.clouds.vastai import VastProvider
from ategnatos_mcp.providers.factory import build_providers, open_gpu_service, runpod_rest_url, vast_list_url
from ategnatos_mcp.providers.models import (
    MAX_HOURS,
    MAX_USD_PER_HOUR,
    MAX_VRAM_GB,
    MIN_HOURS,
    Balance,
    CreateRequest,
    GpuDocument,
    GpuOffer,
    Instance,
    InstanceStatus,
    OfferQuery,
    Quote,
    Rental,
)
from ategnatos_mcp.providers.rental.budget import BudgetExceededError, enforce_budget, month_spend
from ategnatos_mcp.providers.rental.consent import Consent
from ategnatos_mcp.providers.rental.ledger import GPU_DOCUMENT
from ategnatos_mcp.providers.rental.priceguard import PriceRefusedError
from ategnatos_mcp.providers.rental.results import (
    InstancesResult,
    InstanceView,
    OffersResult,
    OfferView,
    SpinupResult,
    TeardownItem,
    TeardownResult,
)
from ategnatos_mcp.providers.rental.service import GpuService
from ategnatos_mcp.providers.rental.view import GPU_VIEW, render_gpu, teardown_reminder
from ategnatos_mcp.providers.setup.deploy import Deployer, DeployPlan, DeployResult, DeployTarget, deploy_plan
from ategnatos_mcp.providers.setup.watchdog import HEARTBEAT_COMMAND, install_command, render_watchdog, stop_command_for

__all__ = [
    "GPU_DOCUMENT",
    "GPU_VIEW",
    "HEARTBEAT_COMMAND",
    "AnswerLimits",
    "MAX_HOURS",
    "MAX_USD_PER_HOUR",
    "MAX_VRAM_GB",
    "MIN_HOURS",
    "Balance",
    "BudgetExceededError",
    "Consent",
    "CreateOutcomeUnknownError",
    "CreateRequest",
    "DeployPlan",
    "DeployResult",
    "DeployTarget",
    "Deployer",
    "GpuDocument",
    "GpuOffer",
    "GpuProvider",
    "GpuService",
    "Instance",
    "InstanceStatus",
    "InstanceView",
    "InstancesResult",
    "LambdaProvider",
    "LocalProvider",
    "OfferQuery",
    "OfferUnavailableError",
    "OfferView",
    "OffersResult",
    "PaymentRequiredError",
    "PriceRefusedError",
    "ProviderHttpError",
    "Quote",
    "Rental",
    "RunPodProvider",
    "SpinupResult",
    "TeardownItem",
    "TeardownResult",
    "VastProvider",
    "build_providers",
    "deploy_plan",
    "enforce_budget",
    "gpu_matches",
    "install_command",
    "month_spend",
    "open_gpu_service",
    "render_gpu",
    "teardown_reminder",
    "render_watchdog",
    "runpod_rest_url",
    "stop_command_for",
    "unify_gpu_name",
    "vast_list_url",
]
