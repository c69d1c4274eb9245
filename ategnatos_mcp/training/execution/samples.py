"""Sample images a run makes while it trains: found by each backend's own file names, fetched, previewed.

- kohya sd-scripts (``sample_image_inference``): ``<output_dir>/sample/<output_name>_<e{epoch:06d} or
  {step:06d}>_<prompt index:02d>_<YYYYmmddHHMMSS>[_<seed>].png``; the index is the line of the sample-prompts file.
- SimpleTuner (``Validation._save_images``): ``<output_dir>/validation_images/step_<step>_<shortname>_<W>x<H>.png``;
  shortname ``validation`` is ``validation_prompt`` (our first sample prompt), ``unconditional`` the empty prompt.
- ai-toolkit (``BaseSDTrainProcess.sample``): ``<training_folder>/<name>/samples/<ms>__<step:09d>_<index>.<ext>``
  with ``<index>`` into ``sample.prompts``; the baseline made before training has no step (``<ms>__<index>``).
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path, PurePosixPath

import anyio.to_thread
from pydantic import BaseModel, Field

from ategnatos_mcp.errors import AtegnatosError
from ategnatos_mcp.training.execution.hosts import TrainingHost
from ategnatos_mcp.training.execution.models import RunHandle
from ategnatos_mcp.training.execution.shell import listing

__all__ = [
    "SampleImage",
    "SamplePreview",
    "SampleSet",
    "collect_samples",
    "parse_sample_name",
    "sample_folder",
    "sample_previews",
]

LIST_LIMIT = 24  # listed in an answer (newest first); the count says how many there are in all
FETCH_LIMIT = 12  # copied from an SSH host per call (newest first); the rest on the next call
PREVIEW_SIDE = 384
PREVIEW_BUDGET = 240_000  # bytes for all previews of one answer

_ST = re.compile(r"^step_(\d+)_(.*)_(\d+)x(\d+)\.png$")
_AITK = re.compile(r"^(\d+)__(?:(\d{9})_)?(\d+)\.(?:jpg|jpeg|png|webp)$")


class SampleImage(BaseModel):
    """One sample image the trainer made, and what it shows."""

    file: str = Field(description="The image on the training host.")
    local_path: str | None = Field(
        default=None, description="The image on this machine (a fetched copy for an SSH host); None until fetched."
    )
    step: int | None = Field(default=None, description="The training step it was made at (0: before training).")
    epoch: int | None = None
    prompt: str | None = Field(default=None, description="The prompt it was made from, when known ('' = no prompt).")
    new: bool = Field(default=False, description="Not shown by an earlier training_status call.")


class SampleSet(BaseModel):
    """The run's sample images, newest first."""

    samples: list[SampleImage] = Field(default_factory=list, description=f"The newest {LIST_LIMIT}.")
    total: int = 0
    new: int = Field(default=0, description="How many are new since the last training_status call.")
    waiting: int = Field(default=0, description="New ones not fetched from the host yet (the next call fetches them).")


class SamplePreview(BaseModel):
    """A small JPEG of a sample image, for the answer's image content."""

    file: str
    data: bytes
    mime_type: str = "image/jpeg"


def sample_folder(handle: RunHandle) -> str:
    """Where the backend writes the run's sample images."""
    if handle.backend == "kohya":
        return f"{handle.output_dir}/sample"
    if handle.backend == "simpletuner":
        return f"{handle.output_dir}/validation_images"
    return f"{handle.output_dir}/{handle.job_name or ''}/samples"


def _prompt(prompts: list[str], index: int) -> str | None:
    return prompts[index] if 0 <= index < len(prompts) else None


def parse_sample_name(
    backend: str, name: str, *, output_name: str, prompts: list[str], steps_per_epoch: int | None
) -> tuple[SampleImage, tuple[int, int]] | None:
    """What a sample file's name says (step, epoch, prompt) and its order (step, position); None: not a sample."""
    step: int | None = None
    epoch: int | None = None
    if backend == "kohya":
        pattern = rf"^{re.escape(output_name)}_(?:e(\d{{6}})|(\d{{6}}))_(\d{{2}})_(\d{{14}})(?:_\d+)?\.png$"
        if not (m := re.match(pattern, name)):
            return None
        index = int(m.group(3))
        prompt = _prompt(prompts, index)
        if m.group(1) is not None:
            epoch = int(m.group(1))
            step = epoch * steps_per_epoch if steps_per_epoch else None
        else:
            step = int(m.group(2))
        position = int(m.group(4)) * 100 + index
    elif backend == "simpletuner":
        if not (m := _ST.match(name)):
            return None
        step, shortname = int(m.group(1)), m.group(2)
        prompt = {"validation": _prompt(prompts, 0), "unconditional": ""}.get(shortname)
        position = 0 if shortname == "validation" else 1
    else:
        if not (m := _AITK.match(name)):
            return None
        step = int(m.group(2)) if m.group(2) is not None else 0
        index = int(m.group(3))
        prompt = _prompt(prompts, index)
        position = index
    if epoch is None and step and steps_per_epoch:
        epoch = math.ceil(step / steps_per_epoch)
    return SampleImage(file=name, step=step, epoch=epoch, prompt=prompt), (step if step is not None else -1, position)


async def collect_samples(
    host: TrainingHost,
    handle: RunHandle,
    *,
    output_name: str,
    prompts: list[str],
    steps_per_epoch: int | None,
    local_dir: Path,
    fetch_limit: int = FETCH_LIMIT,
) -> tuple[SampleSet, list[str]]:
    """The run's sample images, newest first; new ones on an SSH host are copied into ``local_dir`` first.

    ``handle.samples_seen`` names the ones reported before; the second value names those reported now (a new
    image counts as seen once it is on this machine).
    """
    folder = sample_folder(handle)
    found: list[tuple[tuple[int, int], SampleImage]] = []
    for name in await listing(host, folder):
        parsed = parse_sample_name(
            handle.backend, name, output_name=output_name, prompts=prompts, steps_per_epoch=steps_per_epoch
        )
        if parsed is not None:
            sample, order = parsed
            found.append((order, sample.model_copy(update={"file": f"{folder}/{name}"})))
    found.sort(key=lambda item: (-item[0][0], item[0][1]))
    seen = set(handle.samples_seen)
    result = SampleSet(total=len(found))
    newly_seen: list[str] = []
    fetched = 0
    for _order, sample in found:
        name = PurePosixPath(sample.file).name
        if name in seen:
            sample.local_path = sample.file if host.spec.kind == "local" else str(local_dir / name)
        else:
            sample.new = True
            result.new += 1
            if host.spec.kind == "local":
                sample.local_path = sample.file
            elif fetched < fetch_limit:
                fetched += 1
                try:
                    sample.local_path = str(await host.fetch(sample.file, local_dir / name))
                except AtegnatosError:
                    sample.local_path = None  # e.g. still being written: the next call tries again
            if sample.local_path is None:
                result.waiting += 1
            else:
                newly_seen.append(name)
    result.samples = [sample for _order, sample in found[:LIST_LIMIT]]
    return result, newly_seen


async def sample_previews(
    samples: SampleSet, *, count: int, max_side: int = PREVIEW_SIDE, budget_bytes: int = PREVIEW_BUDGET
) -> list[SamplePreview]:
    """Small JPEGs of the newest new samples on this machine: at most ``count``, together within ``budget_bytes``."""
    from ategnatos_mcp.dataset.previews import make_preview  # start-up: Pillow (+10 ms) only for previews

    chosen = [s for s in samples.samples if s.new and s.local_path][:count]
    previews: list[SamplePreview] = []
    left = budget_bytes
    for index, sample in enumerate(chosen):
        share = left // (len(chosen) - index)
        assert sample.local_path is not None
        data = await anyio.to_thread.run_sync(
            functools.partial(make_preview, Path(sample.local_path), max_side=max_side, budget=share)
        )
        if data is not None:
            previews.append(SamplePreview(file=sample.file, data=data))
            left -= len(data)
    return previews
