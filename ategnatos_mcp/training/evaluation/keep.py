"""The LoRA comes home: the save the artist picked is copied from the training host into ``workspace/loras/<run>/``
(sha256-verified; a cut download resumes), put where ComfyUI finds it, and registered in the studio with where it
came from (run, dataset, config, base model, trigger word, epoch, chosen weight, verdict), so ``art_prompt`` offers
it with its trigger word and that weight.

Like the sheet, the copy runs in the server's task group; a call waits at most ``wait_seconds``.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
import anyio.to_thread

from ategnatos_mcp.errors import AtegnatosError, InvalidRequestError, NotFoundError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.state.atomic import copy_file_atomic
from ategnatos_mcp.studio import STUDIO_DOCUMENT, LoraProvenance, StudioInventory, register_entry
from ategnatos_mcp.training import TrainingConfig, write_records
from ategnatos_mcp.training.evaluation.grid import choose_saves
from ategnatos_mcp.training.evaluation.models import EvalAnswer, EvalRecord, EvalSave, KeptLora, evaluation_document
from ategnatos_mcp.training.evaluation.placing import shelve
from ategnatos_mcp.training.evaluation.records import render_eval_md
from ategnatos_mcp.training.evaluation.service import EvalStudio, Evaluations, Work
from ategnatos_mcp.training.evaluation.shelves import file_sha256, host_sha256
from ategnatos_mcp.training.execution import RunHandle

__all__ = ["Keeper", "weight_range"]

logger = logging.getLogger("ategnatos_mcp.training")

_SPREAD = 0.15  # the studio keeps a range around the chosen weight; art_prompt starts from its middle


def weight_range(weight: float) -> tuple[float, float]:
    """A range whose middle is ``weight`` (art_prompt's default), inside 0-2."""
    spread = min(_SPREAD, weight, 2 - weight)
    return round(weight - spread, 2), round(weight + spread, 2)


def _copy_home(source: Path, target: Path) -> None:
    # A temp file of its own (never a shared ".part"): a second conversation keeping the same save at the same
    # moment copies beside this one, and either copy is the whole file.
    copy_file_atomic(source, target)


class Keeper:
    """``train_evaluate action='keep'``: one save brought home and registered."""

    def __init__(self, evaluations: Evaluations) -> None:
        self.ev = evaluations
        self._jobs: dict[str, Work] = {}
        self._results: dict[str, KeptLora] = {}
        self._errors: dict[str, AtegnatosError] = {}

    async def keep(
        self,
        name: str,
        *,
        epoch: int | None,
        weight: float | None,
        verdict: str,
        studio: EvalStudio | None,
        wait_seconds: float,
        report: Progress | None = None,
    ) -> EvalAnswer:
        """Bring the save at ``epoch`` home and register it at ``weight``.

        Raises:
            InvalidRequestError: no epoch or weight given, or a weight outside 0-2.
            NotFoundError: no run, or no save at that epoch.
        """
        if epoch is None or weight is None:
            raise InvalidRequestError(
                "To keep a LoRA, say which save and at which weight.",
                hint="Call train_evaluate with action='keep', epoch=<the row's epoch>, weight=<the column's weight> "
                "(and verdict=<why, in the artist's words>).",
            )
        if not 0 < weight <= 2:
            raise InvalidRequestError(
                f"A kept LoRA needs a weight above 0 and at most 2, not {weight:g}.", hint="Most work at 0.6-1.0."
            )
        cfg, handle, checkpoints, total_epochs, _state = await self.ev.run_facts(name)
        [save] = choose_saves(cfg.name, checkpoints, [epoch], total_epochs)
        key = f"{cfg.name}:{save.file}:{weight:g}:{verdict}"
        job = self._jobs.get(key)
        if job is None or (job.finished.is_set() and key in self._errors):
            self._errors.pop(key, None)
            job = Work(spec_hash=key, total=1)
            self._jobs[key] = job
            work = (self._work, key, cfg, handle, save, weight, verdict, studio, job)
            if self.ev.task_group is None:
                await work[0](*work[1:])
            else:
                self.ev.task_group.start_soon(*work)
        await self.ev.follow(job, wait_seconds, report)
        return await self._answer(cfg.name, key, job)

    async def _work(
        self,
        key: str,
        cfg: TrainingConfig,
        handle: RunHandle,
        save: EvalSave,
        weight: float,
        verdict: str,
        studio: EvalStudio | None,
        job: Work,
    ) -> None:
        try:
            self._results[key] = await self._bring_home(cfg, handle, save, weight, verdict, studio, job)
            job.done = 1
        except AtegnatosError as exc:
            self._errors[key] = exc
        except Exception:  # top of a background task: one failed copy must never take the server down
            logger.exception("Keeping %s failed", key)
            self._errors[key] = AtegnatosError(
                "Bringing the LoRA home stopped unexpectedly (the server log has the details).",
                hint="Call train_evaluate action='keep' again: a finished copy is found and kept, never copied twice.",
            )
        finally:
            job.finished.set()

    async def _bring_home(
        self,
        cfg: TrainingConfig,
        handle: RunHandle,
        save: EvalSave,
        weight: float,
        verdict: str,
        studio: EvalStudio | None,
        job: Work,
    ) -> KeptLora:
        folder = self.ev.workspace / "loras" / cfg.name
        filename = PurePosixPath(save.comfyui_name).name
        job.message = f"copying {filename} from {handle.host.identity}"
        async with self.ev.hosts.open(handle.host) as host:
            digest = await host_sha256(host, save.file)
            if digest is None:
                raise NotFoundError(
                    f"The save '{save.label}' ({save.file}) is no longer on {handle.host.identity}.",
                    kind="LoRA file",
                    name=save.file,
                    hint="Pick another epoch (training_status lists the saves).",
                )
            target = await _free_name(folder / filename, digest)
            if not target.is_file():
                fetched = await host.fetch(save.file, target)  # SSH: resumable, sha256-verified download
                if fetched != target:  # this machine: the trainer's own file, copied
                    await anyio.to_thread.run_sync(_copy_home, fetched, target)
            if await anyio.to_thread.run_sync(file_sha256, target) != digest:
                raise AtegnatosError(
                    f"The copy of {filename} does not match the save on {handle.host.identity}.",
                    hint="Call train_evaluate action='keep' again: the copy starts over.",
                )
            notes = await self._to_comfyui(cfg.name, host, handle, save, studio)
        execution = await self.ev.store.read(evaluation_document(cfg.name), EvalRecord)
        provenance = LoraProvenance(
            run=cfg.name,
            base_model=cfg.base_model,
            family=cfg.family,
            trigger_word=cfg.trigger_word,
            dataset_path=cfg.dataset_path,
            dataset_hash=cfg.dataset_fingerprint,
            config_hash=handle.config_hash,
            backend=handle.backend,
            epoch=save.epoch,
            step=save.step,
            source=f"{handle.host.identity}:{save.file}",
            sha256=digest,
            weight=weight,
            verdict=verdict.strip(),
            sheet=execution.sheet if execution.spec and save.file in {s.file for s in execution.spec.saves} else None,
            kept_at=self.ev.clock(),
        )
        kept = KeptLora(name=save.comfyui_name, path=str(target), provenance=provenance)
        await self._register(cfg, kept, weight)
        async with self.ev.store.update(evaluation_document(cfg.name), EvalRecord) as upd:
            upd.doc.name = cfg.name
            upd.doc.kept = [k for k in upd.doc.kept if k.name != kept.name] + [kept]
            record = upd.doc.model_copy(deep=True)
        await write_records(self.ev.store, cfg.name, {"eval.md": render_eval_md(cfg.name, record)})
        job.message = "; ".join(notes)
        return kept

    async def _to_comfyui(
        self, name: str, host: Any, handle: RunHandle, save: EvalSave, studio: EvalStudio | None
    ) -> list[str]:
        """Also onto ComfyUI's LoRA shelf, so the studio's name works in comfyui_submit right away."""
        if studio is None or studio.shelf is None:
            return ["ComfyUI could not be reached to put it there; the studio entry names the file to copy."]
        await shelve(self.ev.workspace, name, handle, host, save, studio.shelf)
        return []

    async def _register(self, cfg: TrainingConfig, kept: KeptLora, weight: float) -> None:
        low, high = weight_range(weight)
        p = kept.provenance
        what = f"run {cfg.name} ({cfg.training_type}, {cfg.image_count} images of {cfg.dataset_path}), "
        what += f"{'epoch ' + str(p.epoch) if p.epoch else 'step ' + str(p.step)}, chosen at weight {weight:g}"
        fields: dict[str, Any] = {
            "trigger_words": [cfg.trigger_word] if cfg.trigger_word else [],
            "weight_min": low,
            "weight_max": high,
            "base_model": cfg.family,
            "trained_on": what + (f": {p.verdict}" if p.verdict else ""),
            "location": kept.path,
            "provenance": p.model_dump(),
        }
        async with self.ev.store.update(STUDIO_DOCUMENT, StudioInventory) as upd:
            register_entry(upd.doc, "lora", "add", kept.name, fields)

    async def _answer(self, name: str, key: str, job: Work) -> EvalAnswer:
        error = self._errors.get(key)
        kept = self._results.get(key)
        record = await self.ev.store.read(evaluation_document(name), EvalRecord)
        if error is not None:
            return EvalAnswer(
                name=name, state="failed", notes=[str(error)], next_step="Fix that, then keep the save again."
            )
        if kept is None:
            return EvalAnswer(
                name=name,
                state="placing",
                notes=[job.message],
                next_step="Still copying; call train_evaluate with the same arguments again to follow it.",
            )
        p = kept.provenance
        trigger = f" with its trigger word '{p.trigger_word}'" if p.trigger_word else ""
        return EvalAnswer(
            name=name,
            state="done",
            sheet=record.sheet,
            kept=kept,
            notes=[n for n in [job.message] if n],
            next_step=(
                f"It is in the studio as '{kept.name}': art_prompt with loras=['{kept.name}'] uses it{trigger} at "
                f"weight {p.weight:g}. If the GPU instance is no longer needed, tear it down (gpu_teardown)."
            ),
        )


async def _free_name(wanted: Path, digest: str) -> Path:
    """``wanted``, or ``name-2`` ... when another file (another run's save) already has that name."""
    candidate, n = wanted, 1
    while candidate.is_file() and await anyio.to_thread.run_sync(file_sha256, candidate) != digest:
        n += 1
        candidate = wanted.with_name(f"{wanted.stem}-{n}{wanted.suffix}")
    return candidate
