"""ComfyUI: probe servers, validate and queue workflows, watch jobs, save results.

Public API (small on purpose; other domains use only these names):

- ``probe_servers(urls, timeout=3.0) -> list[ComfyUIProbe]``: reachability, version, queue, models per URL.
- ``ComfyUIPool(urls, http, settings=..., task_group=..., outputs_dir=...)``: the servers and their jobs (the
  server's wiring holds one).
  - ``pool.add_server(url)`` / ``pool.remove_server(url)``: add or drop an endpoint at run time (e.g. a
    port-forwarded cloud instance).
  - ``await pool.submit(workflow, uploads=[ImageUpload(...)], template=..., params=..., seed=...) -> JobRecord``
  - ``await pool.wait(job_id, seconds, on_progress) -> JobRecord`` (``record.saved`` lists the files, also
    the pictures a ``SaveImageWebsocket`` node sent over the websocket)
  - ``await pool.cancel(job_id)``, ``pool.job(job_id)``, ``await pool.status()``
- ``render_template(get_template("upscale-esrgan"), {"image": path})`` -> ``RenderedWorkflow``; or use
  ``ComfyUIService(pool, settings, store).submit(template=..., params=..., ...)`` which does it all.
- ``open_pool(urls, settings=..., outputs_dir=...)``: a pool outside the MCP server (scripts, benchmarks).
"""

from ategnatos_mcp.comfyui.client import ComfyUIClient, PromptRejected
from ategnatos_mcp.comfyui.models import (
    ComfyUIProbe,
    JobRecord,
    JobState,
    OutputFile,
    SavedOutput,
    ServerStatus,
    ValidationProblem,
)
from ategnatos_mcp.comfyui.pool import ComfyUIPool, ImageUpload, WorkflowInvalid, open_pool
from ategnatos_mcp.comfyui.probe import probe_servers
from ategnatos_mcp.comfyui.service import (
    ComfyUIService,
    JobView,
    StatusView,
    WorkflowAnswer,
    read_workflow,
)
from ategnatos_mcp.comfyui.templates import (
    LoraChoice,
    RenderedWorkflow,
    Template,
    get_template,
    list_templates,
    render_template,
)
from ategnatos_mcp.comfyui.workflows import WorkflowLibrary, ui_to_api

__all__ = [
    "ComfyUIClient",
    "ComfyUIPool",
    "ComfyUIProbe",
    "ComfyUIService",
    "ImageUpload",
    "JobRecord",
    "JobState",
    "JobView",
    "LoraChoice",
    "OutputFile",
    "PromptRejected",
    "RenderedWorkflow",
    "SavedOutput",
    "ServerStatus",
    "StatusView",
    "Template",
    "ValidationProblem",
    "WorkflowAnswer",
    "WorkflowInvalid",
    "WorkflowLibrary",
    "get_template",
    "list_templates",
    "open_pool",
    "probe_servers",
    "read_workflow",
    "render_template",
    "ui_to_api",
]
