"""Putting the run's saves onto ComfyUI's LoRA shelf: left alone when already there (same sha256), copied on the
machine when the shelf is on the training host, else brought to this computer (verified, resumable) and sent on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Protocol

from ategnatos_mcp.errors import InvalidRequestError, NotFoundError, StateError
from ategnatos_mcp.training.evaluation.models import EvalSave, EvalSpec
from ategnatos_mcp.training.evaluation.shelves import LoraShelf, host_sha256
from ategnatos_mcp.training.execution import HostRegistry, RunHandle, TrainingHost

__all__ = ["Listing", "place_saves", "shelve"]


class Listing(Protocol):
    """What the ComfyUI drawing the sheet lists (its URL, and its model folders now)."""

    url: str

    async def listing(self) -> dict[str, list[str]]: ...


async def shelve(
    workspace: Path, name: str, handle: RunHandle, host: TrainingHost, save: EvalSave, shelf: LoraShelf
) -> None:
    """One save onto ``shelf`` as ``save.comfyui_name``.

    Raises:
        NotFoundError: the save is gone from the training host.
        StateError: the copy does not match the save.
    """
    digest = await host_sha256(host, save.file)
    if digest is None:
        raise NotFoundError(
            f"The save '{save.label}' ({save.file}) is no longer on {handle.host.identity}.",
            kind="LoRA file",
            name=save.file,
            hint="Pick other epochs (training_status lists the saves), then call train_evaluate again.",
        )
    if await shelf.holds(save.comfyui_name, digest):
        return
    if shelf.shares_disk_with(handle.host.identity):
        await shelf.copy_within(save.file, save.comfyui_name)
    else:
        here = workspace / "training" / name / "loras" / PurePosixPath(save.comfyui_name).name
        await shelf.put_file(await host.fetch(save.file, here), save.comfyui_name, None)
    if not await shelf.holds(save.comfyui_name, digest):
        raise StateError(
            f"{save.comfyui_name} arrived in {shelf.where} with other content than the save on the training host.",
            document="",
        )


async def place_saves(
    hosts: HostRegistry,
    workspace: Path,
    name: str,
    handle: RunHandle,
    spec: EvalSpec,
    comfyui: Listing,
    shelf: LoraShelf | None,
    on_file: Callable[[EvalSave], None] | None = None,
) -> None:
    """Every save of ``spec`` where ``comfyui`` finds it, then checked in its list.

    Raises:
        InvalidRequestError: ComfyUI does not list the files put on the shelf (not the folder it reads).
    """
    if shelf is not None:
        async with hosts.open(handle.host) as host:
            for save in spec.saves:
                if on_file is not None:
                    on_file(save)
                await shelve(workspace, name, handle, host, save, shelf)
    listed = set((await comfyui.listing()).get("loras", []))
    unseen = [s.comfyui_name for s in spec.saves if s.comfyui_name not in listed]
    if unseen:
        raise InvalidRequestError(
            f"The LoRA files are in {shelf.where if shelf else 'place'}, but the ComfyUI at {comfyui.url} "
            f"does not list them ({', '.join(unseen)}): that folder is not the one this ComfyUI reads.",
            hint="Set [comfyui] models_dir in ategnatos.toml to the models folder of that ComfyUI, then call "
            "train_evaluate again.",
        )
