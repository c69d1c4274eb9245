"""Container images for a rental: which providers start one, whether a name is a plausible image reference, and
the CUDA version its tag names (so the host's driver can be pinned to it)."""

from __future__ import annotations

import re

from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.providers.models import ProviderName

__all__ = ["DEFAULT_IMAGE", "IMAGE_PROVIDERS", "check_image", "cuda_too_new", "image_cuda", "image_for", "min_cuda_for"]

DEFAULT_IMAGE = "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04"
# RunPod pods and Vast.ai instances are containers started from an image; Lambda rents whole VMs.
IMAGE_PROVIDERS: frozenset[ProviderName] = frozenset({"runpod", "vast"})

_EXAMPLE = "e.g. 'runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04' or 'ghcr.io/owner/image:tag'"
# The grammar of docker's reference parser (distribution/reference), without IPv6 registries.
_REGISTRY = re.compile(
    r"^(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::\d{1,5})?$"
)
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^\w[\w.-]{0,127}$")
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_CUDA = re.compile(r"cuda[-_]?(\d{2})\.(\d)", re.IGNORECASE)
_VERSION = re.compile(r"^(\d{2})\.(\d)")  # nvidia/cuda tags start with the version: 12.8.0-devel-ubuntu22.04


def _refuse(image: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"'{image}' is not a container image name Ategnatos can use: {why}.",
        hint=f"Give a Docker image reference, name[:tag] ({_EXAMPLE}), or leave image empty for the default.",
    )


def check_image(raw: str) -> str:
    """The image reference, trimmed, if it is plausible (docker's own grammar).

    Raises:
        InvalidRequestError: with the reason in plain words (spaces, capitals, an empty part, a bad tag...).
    """
    image = raw.strip()
    if not image:
        raise _refuse(raw, "it is empty")
    if len(image) > 255:
        raise _refuse(image[:40] + "…", "it is longer than 255 characters")
    if any(ch.isspace() for ch in image):
        raise _refuse(image, "it contains spaces")
    if "://" in image:
        raise _refuse(image, "it is a web address; use the image name without http:// or https://")
    name, at, digest = image.partition("@")
    if at and not _DIGEST.match(digest):
        raise _refuse(image, "the part after '@' is not a digest like sha256:<64 hex digits>")
    colon = name.rfind(":")
    if colon > name.rfind("/"):  # a colon before the last slash belongs to a registry's port
        name, tag = name[:colon], name[colon + 1 :]
        if not tag:
            raise _refuse(image, "the tag after ':' is empty")
        if not _TAG.match(tag):
            raise _refuse(image, f"the tag '{tag}' may only use letters, digits, '_', '.' and '-' (128 at most)")
    _check_name(image, name)
    return image


def _check_name(image: str, name: str) -> None:
    """The repository part: an optional registry host, then lower-case path components."""
    parts = name.split("/")
    if len(parts) > 1 and (("." in parts[0] or ":" in parts[0]) or parts[0] == "localhost"):
        registry, parts = parts[0], parts[1:]
        if not _REGISTRY.match(registry):
            raise _refuse(image, f"the registry '{registry}' is not a host name")
    for part in parts:
        if not part:
            raise _refuse(image, "it has an empty part between slashes")
        if part != part.lower():
            raise _refuse(image, f"'{part}' has capital letters (image names are lower case; only tags may not be)")
        if not _COMPONENT.match(part):
            raise _refuse(image, f"'{part}' may only use lower-case letters, digits and single '.', '_' or '-'")


def image_cuda(image: str) -> str | None:
    """The CUDA version an image's tag names ('…-cuda12.4.1-…' -> '12.4'), if it names one."""
    repository, _, tag = image.partition("@")[0].rpartition("/")[2].partition(":")
    found = _CUDA.search(tag) or (_VERSION.match(tag) if repository == "cuda" else None)
    return f"{int(found.group(1))}.{found.group(2)}" if found else None


def image_for(provider: ProviderName, label: str, wanted: str | None, default: str = DEFAULT_IMAGE) -> str:
    """The image to start on ``provider``: the checked ``wanted`` one, or ``default`` when none was given.

    Raises:
        InvalidRequestError: not a plausible image, or the provider does not start containers (Lambda, local).
    """
    if not wanted or not wanted.strip():
        return default
    image = check_image(wanted)
    if provider not in IMAGE_PROVIDERS:
        raise InvalidRequestError(
            f"{label} does not start a container image, so '{image}' cannot be used there.",
            hint="Leave image empty for this offer (Lambda machines come with their own CUDA and PyTorch), "
            "or pick a RunPod or Vast.ai offer to choose the image.",
        )
    return image


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def cuda_too_new(image: str, host_max_cuda: float | None) -> str | None:
    """The CUDA version ``image`` names when the host's driver is too old for it (None: fine or unknown)."""
    needed = image_cuda(image)
    if needed is None or host_max_cuda is None:
        return None
    return needed if _version(needed) > _version(f"{host_max_cuda:g}") else None


def min_cuda_for(asked: str, image: str) -> str:
    """The CUDA to require of the host: what the quote asked for, or the image's own when that is newer."""
    named = image_cuda(image)
    return named if named is not None and _version(named) > _version(asked) else asked
