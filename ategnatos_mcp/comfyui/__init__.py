"""ComfyUI: probe servers, validate and queue workflows, watch jobs, save results.

Public API (small on purpose; other domains use only these names):

- ``probe_servers(urls, timeout=3.0) -> list[ComfyUIProbe]``: reachability, version, queue, models per URL.
- ``ComfyUIClient(url, http)``: one server over HTTP + websocket.
"""

from ategnatos_mcp.comfyui.client import ComfyUIClient, PromptRejected
from ategnatos_mcp.comfyui.models import ComfyUIProbe, JobRecord, JobState, OutputFile, ValidationProblem
from ategnatos_mcp.comfyui.probe import probe_servers

__all__ = [
    "ComfyUIClient",
    "ComfyUIProbe",
    "JobRecord",
    "JobState",
    "OutputFile",
    "PromptRejected",
    "ValidationProblem",
    "probe_servers",
]
