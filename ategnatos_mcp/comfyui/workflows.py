"""User workflows in ``grimoire/workflows/{name}.json`` (API format), and UI-format import.

ComfyUI's editor saves a *UI* graph (nodes with widget value lists, numbered links); the API wants
``{id: {class_type, inputs}}``. Converting needs ``/object_info`` to know which widget value belongs
to which input. When something cannot be converted, the error says exactly which node and why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import anyio
from pydantic import BaseModel

from ategnatos_mcp.errors import InvalidRequestError, NotFoundError
from ategnatos_mcp.paths import safe_name
from ategnatos_mcp.state import write_text_atomic

__all__ = ["WorkflowLibrary", "WorkflowSummary", "is_api_format", "is_ui_format", "summarise", "ui_to_api"]

_WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
_VIRTUAL = {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}
_MUTED, _BYPASSED = 2, 4


class WorkflowSummary(BaseModel):
    name: str
    nodes: int
    outputs: list[str]
    description: str = ""


def is_ui_format(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data


def is_api_format(data: Any) -> bool:
    """``{node id: {class_type, inputs}}``, the shape ComfyUI's /prompt accepts."""
    return (
        isinstance(data, dict)
        and bool(data)
        and all(
            isinstance(node, dict) and isinstance(node.get("class_type"), str) and isinstance(node.get("inputs"), dict)
            for node in cast("dict[str, Any]", data).values()
        )
    )


def _is_widget(spec: list[Any]) -> bool:
    return bool(spec) and (isinstance(spec[0], list) or spec[0] in _WIDGET_TYPES)


def _widget_names(info: dict[str, Any]) -> list[tuple[str, bool]]:
    """(input name, has a 'control after generate' companion widget) in the editor's widget order."""
    inputs = info.get("input") or {}
    order = info.get("input_order") or {k: list((inputs.get(k) or {}).keys()) for k in ("required", "optional")}
    names: list[tuple[str, bool]] = []
    for section in ("required", "optional"):
        for name in order.get(section) or []:
            spec = (inputs.get(section) or {}).get(name) or []
            if _is_widget(spec):
                cfg = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                names.append((name, bool(cfg.get("control_after_generate"))))
    return names


class _Converter:
    def __init__(self, ui: dict[str, Any], info: dict[str, Any]) -> None:
        self.info = info
        self.nodes = {str(n["id"]): n for n in ui.get("nodes", []) if isinstance(n, dict) and "id" in n}
        self.links = {int(link[0]): link for link in ui.get("links", []) if isinstance(link, list) and len(link) >= 5}
        self.problems: list[str] = []

    def source(self, link_id: int, seen: int = 0) -> list[Any] | None:
        """Follow a link back through reroutes and bypassed nodes to a real output ``[node id, slot]``."""
        link = self.links.get(link_id)
        if link is None or seen > 64:
            return None
        origin = self.nodes.get(str(link[1]))
        if origin is None:
            return None
        if origin.get("type") == "Reroute" or origin.get("mode") == _BYPASSED:
            wanted = link[5] if len(link) > 5 else None
            for inp in origin.get("inputs") or []:
                if inp.get("link") is not None and (origin.get("type") == "Reroute" or inp.get("type") == wanted):
                    return self.source(int(inp["link"]), seen + 1)
            return None
        if origin.get("mode") == _MUTED:
            return None
        return [str(link[1]), int(link[2])]

    def primitive_value(self, link_id: int) -> tuple[Any] | None:
        """A PrimitiveNode only holds a widget value for the node it feeds (it is not sent to the API)."""
        link = self.links.get(link_id)
        origin = self.nodes.get(str(link[1])) if link else None
        if origin is None or origin.get("type") != "PrimitiveNode":
            return None
        values = origin.get("widgets_values") or [None]
        return (values[0],)

    def convert(self) -> dict[str, Any]:
        api: dict[str, Any] = {}
        for node_id, node in self.nodes.items():
            kind = str(node.get("type", ""))
            if kind in _VIRTUAL or node.get("mode") in (_MUTED, _BYPASSED):
                continue
            if kind not in self.info:
                why = "a group node or subgraph" if ("/" in kind or ">" in kind or len(kind) == 36) else "not installed"
                self.problems.append(f"Node {node_id} is '{kind}', which this ComfyUI does not have ({why}).")
                continue
            api[node_id] = {
                "class_type": kind,
                "inputs": self.inputs(node_id, node),
                "_meta": {"title": node.get("title") or kind},
            }
        return api

    def inputs(self, node_id: str, node: dict[str, Any]) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        values = node.get("widgets_values")
        names = _widget_names(self.info[node["type"]])
        if isinstance(values, dict):
            inputs.update({name: values[name] for name, _ in names if name in values})
        elif isinstance(values, list):
            position = 0
            for name, has_control in names:
                if position >= len(values):
                    break
                inputs[name] = values[position]
                position += 2 if has_control else 1
        for inp in node.get("inputs") or []:
            if inp.get("link") is None:
                continue
            primitive = self.primitive_value(int(inp["link"]))
            if primitive is not None:
                inputs[str(inp.get("name"))] = primitive[0]
                continue
            src = self.source(int(inp["link"]))
            if src is None:
                self.problems.append(f"Node {node_id} input '{inp.get('name')}' is wired to something that is missing.")
            else:
                inputs[str(inp.get("name"))] = src
        return inputs


def ui_to_api(ui: dict[str, Any], object_info: dict[str, Any]) -> dict[str, Any]:
    """Convert an editor (UI-format) workflow to API format.

    Raises:
        InvalidRequestError: every node that could not be converted, with the reason.
    """
    if (ui.get("definitions") or {}).get("subgraphs"):
        raise InvalidRequestError(
            "This workflow uses subgraphs, which cannot be converted here.",
            hint="In ComfyUI, unpack the subgraphs (or use Workflow > Export (API)) and import that file.",
        )
    converter = _Converter(ui, object_info)
    api = converter.convert()
    if converter.problems or not api:
        reasons = "\n".join(f"- {p}" for p in converter.problems) or "- It has no nodes."
        raise InvalidRequestError(
            f"The workflow could not be converted to API format:\n{reasons}",
            hint="Install the missing custom nodes on ComfyUI, or export with Workflow > Export (API) and import that.",
        )
    return api


class WorkflowLibrary:
    """The artist's saved workflows (API format), one JSON file each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, name: str) -> Path:
        return self.folder / f"{safe_name(name, what='workflow name')}.json"

    async def list(self) -> list[WorkflowSummary]:
        return await anyio.to_thread.run_sync(self._list)

    def _list(self) -> list[WorkflowSummary]:
        if not self.folder.is_dir():
            return []
        summaries = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                summaries.append(WorkflowSummary(name=path.stem, nodes=0, outputs=[], description="(unreadable file)"))
                continue
            summaries.append(summarise(path.stem, data))
        return summaries

    async def has(self, name: str) -> bool:
        """Whether a workflow of that name is saved (the name is checked first)."""
        return await anyio.Path(self._path(name)).is_file()

    async def get(self, name: str) -> dict[str, Any]:
        path = self._path(name)
        try:
            text = await anyio.Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFoundError(
                f"There is no saved workflow '{name}'.",
                kind="workflow",
                name=name,
                hint="workflow_manage action=list shows the saved ones.",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequestError(
                f"The saved workflow '{name}' ({path}) cannot be read ({_reason(exc)}).",
                hint="Check that it is a readable JSON file, or save the workflow again under another name.",
            ) from exc
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise InvalidRequestError(f"{path} is not valid JSON ({exc}).", hint="Fix or delete the file.") from exc
        if not isinstance(data, dict):
            raise InvalidRequestError(
                f"{path} holds JSON, but not a workflow (an object of nodes).", hint="Fix or delete the file."
            )
        return cast("dict[str, Any]", data)

    async def save(self, name: str, workflow: dict[str, Any], *, overwrite: bool = False) -> Path:
        path = self._path(name)
        if path.exists() and not overwrite:
            raise InvalidRequestError(
                f"A workflow called '{name}' already exists.", hint="Pick another name, or pass overwrite=true."
            )
        text = json.dumps(workflow, indent=2)
        await anyio.to_thread.run_sync(_write, path, text)
        return path

    async def delete(self, name: str) -> None:
        path = self._path(name)
        if not path.exists():
            raise NotFoundError(
                f"There is no saved workflow '{name}'.",
                kind="workflow",
                name=name,
                hint="workflow_manage action=list shows the saved ones.",
            )
        await anyio.Path(path).unlink()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return "the file system refused"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def summarise(name: str, data: Any) -> WorkflowSummary:
    """A workflow's size and output nodes, without the workflow itself."""
    if not isinstance(data, dict):
        return WorkflowSummary(name=name, nodes=0, outputs=[], description="(not a workflow)")
    if is_ui_format(data):
        return WorkflowSummary(name=name, nodes=len(data["nodes"]), outputs=[], description="(editor format)")
    outputs = [
        f"{k}:{v.get('class_type')}"
        for k, v in data.items()
        if isinstance(v, dict) and str(v.get("class_type", "")).startswith(("Save", "Preview"))
    ]
    return WorkflowSummary(name=name, nodes=len(data), outputs=outputs)
