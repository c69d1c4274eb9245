"""JobWatch's state machine fed with recorded websocket transcripts of a real ComfyUI 0.3.64."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ategnatos_mcp.comfyui.client import ComfyUIClient
from ategnatos_mcp.comfyui.jobs import JobWatch
from ategnatos_mcp.comfyui.models import JobRecord, JobState, WsEvent

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "comfyui"


def _no_http(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the transcript alone should be enough, but {request.url} was asked")


async def _replay(transcript: str, prompt_id: str, nodes_total: int) -> JobRecord:
    frames = json.loads((FIX / f"{transcript}.json").read_text(encoding="utf-8"))["frames"]
    record = JobRecord(job_id="j", server="http://c", prompt_id=prompt_id, client_id="c", nodes_total=nodes_total)

    async def finished(_: JobWatch) -> None:
        return None

    seen: list[float] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append(value)

    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_http)) as http:
        watch = JobWatch(record, ComfyUIClient("http://c", http), on_finished=finished)
        watch.listen(progress)
        for frame in frames:
            if frame["dir"] != "server->client" or frame["kind"] != "text":
                continue
            data = frame["data"]  # every job's frames: the watch must pick its own
            if await watch._apply(WsEvent(type=data["type"], data=data["data"])):
                break
    assert seen == sorted(seen)
    return record


async def test_recorded_txt2img_run_succeeds_with_its_image() -> None:
    record = await _replay("ws_txt2img", "5a1e6bd3-58f6-40dd-b2c0-f4d019733289", nodes_total=7)
    assert record.state is JobState.SUCCEEDED
    assert [f.filename for f in record.outputs["9"]] == ["mcp_txt2img_00001_.png"]


async def test_recorded_interrupt_during_sampling_is_interrupted() -> None:
    record = await _replay("ws_txt2img", "39cee4f2-8c37-4f00-8372-8d74b685efb8", nodes_total=7)
    assert record.state is JobState.INTERRUPTED and record.outputs == {}


async def test_recorded_runtime_error_names_the_node_and_the_reason() -> None:
    record = await _replay("ws_runtime_errors", "e0fc049b-5845-451b-b872-158f005dff8a", nodes_total=3)
    assert record.state is JobState.FAILED
    assert record.error is not None and record.error.startswith("SaveImage (node 3) failed:")
    assert "outside the output folder" in record.error


async def test_recorded_cached_rerun_reuses_the_previous_files() -> None:
    record = await _replay("ws_basic_three_runs", "8719b227-f38e-4b4c-ae8f-29c8275215b0", nodes_total=3)
    assert record.state is JobState.SUCCEEDED
    assert record.cached_nodes == ["1", "2", "3"]
    assert [f.filename for f in record.outputs["3"]] == ["mcp_basic_00001_.png", "mcp_basic_00002_.png"]


async def test_a_history_failure_while_reading_events_surfaces_as_an_upstream_error() -> None:
    from collections.abc import AsyncIterator

    from ategnatos_mcp.errors import UpstreamError

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def events() -> AsyncIterator[WsEvent]:
        yield WsEvent(type="executing", data={"node": None, "prompt_id": "p"})

    async def finished(_: JobWatch) -> None:
        return None

    record = JobRecord(job_id="j", server="http://c", prompt_id="p", client_id="c")
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        watch = JobWatch(record, ComfyUIClient("http://c", http), on_finished=finished)
        with pytest.raises(UpstreamError):  # not an ExceptionGroup that would stop the server's task group
            await watch._read(events())


def _recorded(name: str) -> httpx.Response:
    return httpx.Response(200, json=json.loads((FIX / f"{name}.json").read_text(encoding="utf-8"))["response"]["body"])


async def _poll(prompt_id: str, routes: dict[str, str]) -> JobRecord:
    """One polling step (no websocket) against recorded /history and /queue answers."""
    record = JobRecord(job_id="j", server="http://c", prompt_id=prompt_id, client_id="c", nodes_total=3)

    async def finished(_: JobWatch) -> None:
        return None

    def answer(request: httpx.Request) -> httpx.Response:
        name = routes.get(request.url.path)
        return _recorded(name) if name else httpx.Response(200, json={})  # /history/{id} of an unfinished job

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        watch = JobWatch(record, ComfyUIClient("http://c", http), on_finished=finished, live=False)
        await watch._poll_once()
    return record


async def test_polling_reads_the_end_from_the_recorded_history() -> None:
    ok = "c6b631c2-34c4-48bc-adfb-5b6236671ac7"
    record = await _poll(ok, {f"/history/{ok}": "get_history_by_id_basic"})
    assert record.state is JobState.SUCCEEDED and record.outputs
    bad = "e0fc049b-5845-451b-b872-158f005dff8a"
    record = await _poll(bad, {f"/history/{bad}": "get_history_by_id_runtime_error_save_outside"})
    assert record.state is JobState.FAILED and record.error and "Saving image outside" in record.error


async def test_polling_sees_running_waiting_and_forgotten_jobs_in_the_recorded_queue() -> None:
    running = "8a73d622-2456-44c5-827d-4cf98d927a4b"
    record = await _poll(running, {"/queue": "get_queue_running_and_pending"})
    assert record.state is JobState.RUNNING and record.started_at is not None
    record = await _poll("86ee0155-c638-4c22-9790-e39c179ed487", {"/queue": "get_queue_running_and_pending"})
    assert record.state is JobState.QUEUED and record.error is None
    record = await _poll(running, {"/queue": "get_queue_empty"})
    assert record.state is JobState.LOST and record.error and "no longer knows this job" in record.error


def _frame_events(transcript: str, frame_file: str) -> list[WsEvent]:
    """The transcript's events, its picture frames rebuilt from a recorded whole frame of the same kind."""
    from ategnatos_mcp.comfyui.frames import decode_binary_frame

    picture = decode_binary_frame((FIX / frame_file).read_bytes())
    events = []
    for frame in json.loads((FIX / f"{transcript}.json").read_text(encoding="utf-8"))["frames"]:
        if frame["dir"] != "server->client":
            continue
        if frame["kind"] == "text":
            events.append(WsEvent(type=frame["data"]["type"], data=frame["data"]["data"]))
        elif frame["summary"]["event_type"] in (1, 4) and picture is not None:
            events.append(WsEvent(type="image", image=picture))
    return events


@pytest.mark.parametrize(
    ("transcript", "frame_file", "prompt_id"),
    [
        ("ws_binary_frames_legacy", "ws_legacy_frame_0.bin", "6403966a-fbb3-4980-b127-6dc72efd1493"),
        ("ws_binary_frames_feature_flags", "ws_meta_frame_0.bin", "28dced7b-d367-4287-a246-aae86b80a856"),
    ],
)
async def test_recorded_save_image_websocket_frames_are_kept_for_their_node(
    transcript: str, frame_file: str, prompt_id: str
) -> None:
    record = JobRecord(job_id="j", server="http://c", prompt_id=prompt_id, client_id="c", nodes_total=4)

    async def finished(_: JobWatch) -> None:
        return None

    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_http)) as http:
        watch = JobWatch(record, ComfyUIClient("http://c", http), on_finished=finished, stream_nodes=frozenset({"3"}))
        for event in _frame_events(transcript, frame_file):
            if await watch._apply(event):
                break
    assert record.state is JobState.SUCCEEDED
    assert [(node, image.mime_type) for node, image in watch.streamed] == [("3", "image/png")] * 2


async def test_recorded_sampler_previews_are_not_kept() -> None:
    record = JobRecord(job_id="j", server="http://c", prompt_id="8e375640-37c3-405d-9a27-74113c3be5ca", client_id="c")

    async def finished(_: JobWatch) -> None:
        return None

    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_http)) as http:
        # A workflow with a SaveImageWebsocket elsewhere: the sampler's (node 3) previews are still not results.
        watch = JobWatch(record, ComfyUIClient("http://c", http), on_finished=finished, stream_nodes=frozenset({"10"}))
        events = _frame_events("ws_binary_frames_legacy", "ws_txt2img_preview_legacy_frame.bin")
        previews = [e for e in events if e.type == "image"]
        await watch._apply(WsEvent(type="executing", data={"node": "3", "prompt_id": record.prompt_id}))
        for event in previews:
            await watch._apply(event)
    assert len(previews) == 2 and previews[0].image is not None and previews[0].image.mime_type == "image/jpeg"
    assert watch.streamed == []


async def test_streamed_pictures_still_in_flight_when_the_history_says_done_are_kept() -> None:
    import anyio
    import anyio.lowlevel

    prompt_id = "6403966a-fbb3-4980-b127-6dc72efd1493"
    history_asked = anyio.Event()

    def history(request: httpx.Request) -> httpx.Response:
        history_asked.set()  # ComfyUI has written the history; its socket has not sent everything yet
        return _recorded("get_history_by_id_ws_images")

    events = _frame_events("ws_binary_frames_legacy", "ws_legacy_frame_0.bin")
    split = next(i for i, e in enumerate(events) if e.type == "image")

    async def stream():  # noqa: ANN202
        for event in events[:split]:
            yield event
        await history_asked.wait()
        for event in events[split:]:
            await anyio.lowlevel.checkpoint()  # each frame arrives on its own, as over a real socket
            yield event

    async def finished(_: JobWatch) -> None:
        return None

    record = JobRecord(job_id="j", server="http://c", prompt_id=prompt_id, client_id="c", nodes_total=4)
    async with httpx.AsyncClient(transport=httpx.MockTransport(history)) as http:
        client = ComfyUIClient("http://c", http)
        watch = JobWatch(record, client, on_finished=finished, check_every=0.01, stream_nodes=frozenset({"3"}))
        with anyio.fail_after(5):
            assert await watch._read(stream())
    assert record.state is JobState.SUCCEEDED
    assert len(watch.streamed) == 2


async def _follow_over_two_sockets(split: int, *, queue_key: str) -> JobWatch:
    """The recorded SaveImageWebsocket run, its socket closing after ``split`` events; /queue meanwhile lists the
    job under ``queue_key`` (queue_pending: it had not started, queue_running: it ran while we were away)."""
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    import anyio

    prompt_id = "6403966a-fbb3-4980-b127-6dc72efd1493"
    events = _frame_events("ws_binary_frames_legacy", "ws_legacy_frame_0.bin")
    sockets = [events[:split], events[split:]]
    done = anyio.Event()

    @asynccontextmanager
    async def subscribe(_: str) -> AsyncIterator[AsyncIterator[WsEvent]]:
        batch = sockets.pop(0)

        async def stream() -> AsyncIterator[WsEvent]:
            for index, event in enumerate(batch):
                if not sockets and index == len(batch) - 1:
                    done.set()  # ComfyUI has written the history before its last message
                yield event

        yield stream()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/queue":
            item = [[0, prompt_id, {}, {"client_id": "c"}, ["3", "4"]]]
            return httpx.Response(200, json={"queue_running": [], "queue_pending": [], queue_key: item})
        return _recorded("get_history_by_id_ws_images") if done.is_set() else httpx.Response(200, json={})

    async def finished(_: JobWatch) -> None:
        return None

    record = JobRecord(job_id="j", server="http://c", prompt_id=prompt_id, client_id="c", nodes_total=4)
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        watch = JobWatch(
            record,
            ComfyUIClient("http://c", http),
            on_finished=finished,
            subscribe=subscribe,
            stream_nodes=frozenset({"3"}),
        )
        watch.mark_submitted()
        with anyio.fail_after(5):
            await watch._follow()
    assert record.state is JobState.SUCCEEDED
    return watch


async def test_a_socket_drop_while_the_job_still_waits_misses_no_pictures() -> None:
    watch = await _follow_over_two_sockets(0, queue_key="queue_pending")
    assert not watch.missed_events and len(watch.streamed) == 2


async def test_a_socket_drop_while_the_job_runs_is_known_to_miss_pictures() -> None:
    watch = await _follow_over_two_sockets(6, queue_key="queue_running")
    assert watch.missed_events
