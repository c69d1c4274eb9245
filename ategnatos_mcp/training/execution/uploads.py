"""Gate-3 dataset uploads that outlive the call that started them: one per run and host, followed by any call.

A big dataset can take longer to send than a tool call should wait. The upload runs in the server's task group;
a call waits at most its ``wait_seconds`` and answers with the progress so far; a repeat call finds the same
upload (never a second one) and, once the files have arrived, the environment check that ran after it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup

from ategnatos_mcp.errors import AtegnatosError
from ategnatos_mcp.progress import Progress
from ategnatos_mcp.training.execution.environment import EnvironmentCheck
from ategnatos_mcp.training.execution.models import UploadProgress

__all__ = ["DatasetUploads", "UploadJob"]

logger = logging.getLogger(__name__)


@dataclass
class UploadJob:
    """One upload (and the check after it) running in the background."""

    progress: UploadProgress
    finished: anyio.Event = field(default_factory=anyio.Event)
    result: EnvironmentCheck | None = None
    error: AtegnatosError | None = None


class DatasetUploads:
    """The running uploads, by (run name, host identity). Lives as long as the server."""

    def __init__(self, task_group: TaskGroup | None) -> None:
        self.task_group = task_group
        self._jobs: dict[tuple[str, str], UploadJob] = {}

    @property
    def can_run_in_background(self) -> bool:
        return self.task_group is not None

    def get(self, key: tuple[str, str]) -> UploadJob | None:
        return self._jobs.get(key)

    def forget(self, key: tuple[str, str]) -> None:
        self._jobs.pop(key, None)

    def start(
        self,
        key: tuple[str, str],
        progress: UploadProgress,
        work: Callable[[UploadJob, Progress], Awaitable[EnvironmentCheck]],
    ) -> UploadJob:
        """Run ``work(job, on_bytes)`` in the background as the upload of ``key`` (the caller checked none runs)."""
        assert self.task_group is not None
        job = UploadJob(progress=progress)
        self._jobs[key] = job

        async def on_bytes(done: float, total: float | None, _label: str | None) -> None:
            job.progress.sent_bytes, job.progress.total_bytes = int(done), int(total) if total else None

        async def run() -> None:
            try:
                job.result = await work(job, on_bytes)
                job.progress.state = "done"
            except AtegnatosError as exc:
                job.error, job.progress.state, job.progress.message = exc, "failed", exc.message
            except Exception:  # top of a background task: one failed upload must not take the server down
                logger.exception("Dataset upload to %s failed", progress.host)
                job.progress.state = "failed"
                job.progress.message = "The upload stopped unexpectedly (the server log has the details)."
            finally:
                job.finished.set()

        self.task_group.start_soon(run)
        return job
