"""The pool and job watch over real sockets against the fake ComfyUI."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from ategnatos_mcp.comfyui.models import JobState
from ategnatos_mcp.comfyui.pool import ComfyUIPool, ImageUpload, WorkflowInvalid
from ategnatos_mcp.errors import ConsentError, UpstreamError
from ategnatos_mcp.settings import ComfyUISettings
from tests.support.fake_comfyui import FIXTURES, serve_fake
from tests.support.studio import pool_for, workflow

pytestmark = pytest.mark.integration


async def test_txt2img_job_runs_reports_progress_and_saves_image_with_provenance(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        record = await pool.submit(workflow("txt2img_sd15"), template="t", params={"p": 1}, seed=42)
        seen: list[tuple[float, str | None]] = []

        async def progress(value: float, total: float | None, message: str | None) -> None:
            seen.append((value, message))

        with anyio.fail_after(5):
            done = await pool.wait(record.job_id, 5, progress)
    assert done.state is JobState.SUCCEEDED
    assert [s.kind for s in done.saved] == ["image"]
    saved = Path(done.saved[0].path)
    assert saved.read_bytes() == fake.image_bytes
    provenance = json.loads(Path(done.saved[0].sidecar).read_text(encoding="utf-8"))
    assert provenance["seed"] == 42 and provenance["server"] == fake.url
    assert provenance["workflow"]["3"]["class_type"] == "KSampler"
    assert seen and seen[-1][0] == 100.0
    assert [v for v, _ in seen] == sorted(v for v, _ in seen)


async def test_identical_resubmit_is_served_from_cache_with_the_same_files(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        first = await pool.wait((await pool.submit(workflow("basic_empty_invert_save"))).job_id, 5)
        second = await pool.wait((await pool.submit(workflow("basic_empty_invert_save"))).job_id, 5)
    assert first.state is second.state is JobState.SUCCEEDED
    assert second.cached_nodes == ["1", "2", "3"]
    assert second.outputs == first.outputs
    assert len(second.saved) == 2


async def test_missing_checkpoint_is_refused_before_queueing_with_closest_names(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        wf = workflow("txt2img_sd15")
        wf["4"]["inputs"]["ckpt_name"] = "mcp_random_sd15.safetensors"
        wf["3"]["inputs"]["steps"] = 0
        with pytest.raises(WorkflowInvalid) as caught:
            await pool.submit(wf)
    kinds = {(p.node_id, p.kind) for p in caught.value.problems}
    assert kinds == {("4", "not_in_list"), ("3", "too_small")}
    [missing] = [p for p in caught.value.problems if p.kind == "not_in_list"]
    assert missing.suggestions == ["mcp_random_sd15_layout.safetensors"]
    assert not any(path.startswith("/prompt") for _, path in fake.requests if _ == "POST")


async def test_comfyui_own_node_errors_are_mapped_when_our_catalogue_is_stale(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        await pool.wait((await pool.submit(workflow("txt2img_sd15"))).job_id, 5)
        fake.remove_model("checkpoints", "mcp_random_sd15_layout.safetensors")
        with pytest.raises(WorkflowInvalid) as caught:
            await pool.submit(workflow("txt2img_sd15"))
    [problem] = caught.value.problems
    assert (problem.node_id, problem.kind, problem.input_name) == ("4", "not_in_list", "ckpt_name")


async def test_execution_error_is_reported_in_plain_words(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        fake.fail_class = "KSampler"
        done = await pool.wait((await pool.submit(workflow("txt2img_sd15"))).job_id, 5)
    assert done.state is JobState.FAILED
    assert done.error is not None and "KSampler (node 3) failed" in done.error and "out of memory" in done.error


async def test_job_survives_a_websocket_drop_mid_job(tmp_path: Path) -> None:
    async with serve_fake(node_seconds=0.01) as fake, pool_for([fake.url], tmp_path) as pool:
        fake.drop_ws_on = "executing"
        done = await pool.wait((await pool.submit(workflow("txt2img_sd15"))).job_id, 5)
    assert done.state is JobState.SUCCEEDED
    assert len(done.saved) == 1, done.model_dump()


async def test_jobs_on_one_server_share_one_socket_and_all_survive_its_drop(tmp_path: Path) -> None:
    async with serve_fake(node_seconds=0.01) as fake, pool_for([fake.url], tmp_path) as pool:
        variants = []
        for seed in (1, 2, 3):
            wf = workflow("txt2img_sd15")
            wf["3"]["inputs"]["seed"] = seed
            variants.append(wf)
        records = [await pool.submit(wf) for wf in variants]
        assert len({r.client_id for r in records}) == 1
        assert [len(socks) for socks in fake.sockets.values()] == [1]  # one socket carries all three jobs
        fake.drop_ws_on = "executing"  # closes that socket while the first job runs
        done = [await pool.wait(r.job_id, 10) for r in records]
        assert [len(socks) for socks in fake.sockets.values()] == [1]  # reopened once, not once per job
    assert [d.state for d in done] == [JobState.SUCCEEDED] * 3
    assert all(len(d.saved) == 1 for d in done), [d.model_dump() for d in done]
    assert len({d.saved[0].path for d in done}) == 3


async def test_server_restart_mid_job_reports_the_job_lost(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        fake.hold_class = "KSampler"
        record = await pool.submit(workflow("txt2img_sd15"))
        with anyio.fail_after(5):
            await fake.hold_reached.wait()
        await fake.restart()  # type: ignore[attr-defined]
        done = await pool.wait(record.job_id, 5)
    assert done.state is JobState.LOST
    assert done.error is not None and "restarted" in done.error


async def test_cancel_interrupts_a_running_job(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        fake.hold_class = "KSampler"
        record = await pool.submit(workflow("txt2img_sd15"))
        with anyio.fail_after(5):
            await fake.hold_reached.wait()
        done = await pool.cancel(record.job_id)
    assert done.state is JobState.INTERRUPTED
    assert ("POST", "/interrupt") in fake.requests


async def test_cancel_removes_a_pending_job_from_the_queue(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        fake.hold_class = "KSampler"
        await pool.submit(workflow("txt2img_sd15"))
        second = workflow("txt2img_sd15")
        second["3"]["inputs"]["seed"] = 7
        queued = await pool.submit(second)
        with anyio.fail_after(5):
            await fake.hold_reached.wait()
        done = await pool.cancel(queued.job_id)
        fake.hold_release.set()
    assert done.state is JobState.INTERRUPTED
    assert fake.queue == []


async def test_upload_goes_to_the_job_server_and_is_referenced(tmp_path: Path) -> None:
    source = (FIXTURES / "upload_source_rgba.png").read_bytes()
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        wf = workflow("load_uploaded_image")
        [load_id] = [k for k, v in wf.items() if v["class_type"] == "LoadImage"]
        upload = ImageUpload(node_id=load_id, input_name="image", filename="ref.png", data=source)
        record = await pool.submit(wf, uploads=[upload])
        done = await pool.wait(record.job_id, 5)
        sent = fake.prompts[-1]
    assert done.state is JobState.SUCCEEDED
    assert fake.files[("input", "ategnatos", "ref.png")] == source
    assert sent[load_id]["inputs"]["image"] == "ategnatos/ref.png"


async def test_paid_api_nodes_need_explicit_consent(tmp_path: Path) -> None:
    wf = {"1": {"class_type": "OpenAIDalle3", "inputs": {"prompt": "a fox"}}}
    wf["2"] = {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        with pytest.raises(ConsentError) as caught:
            await pool.submit(wf)
    assert "OpenAIDalle3" in caught.value.message and "paid" in caught.value.message


async def test_no_server_answering_says_how_to_start_comfyui(tmp_path: Path) -> None:
    async with pool_for(["http://127.0.0.1:9"], tmp_path) as pool:
        with pytest.raises(UpstreamError) as caught:
            await pool.submit(workflow("basic_empty_invert_save"))
    assert "Start ComfyUI" in caught.value.hint


async def test_two_servers_share_eight_jobs_and_skip_a_dead_one(tmp_path: Path) -> None:
    async with (
        serve_fake() as a,
        serve_fake() as b,
        pool_for([a.url, b.url, "http://127.0.0.1:9"], tmp_path) as pool,
    ):
        a.hold_class = b.hold_class = "SaveImage"
        records = []
        for i in range(8):
            wf = workflow("basic_empty_invert_save")
            wf["1"]["inputs"]["color"] = i
            records.append(await pool.submit(wf))
        a.hold_release.set()
        b.hold_release.set()
        with anyio.fail_after(10):
            done = [await pool.wait(r.job_id, 10) for r in records]
    assert all(d.state is JobState.SUCCEEDED for d in done)
    by_server = {url: sum(d.server == url for d in done) for url in (a.url, b.url)}
    assert by_server == {a.url: 4, b.url: 4}


async def test_a_lost_submit_reply_is_looked_up_before_any_retry(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path, request_timeout_seconds=0.5) as pool:
        await pool.object_info(pool.servers()[0])
        fake.reply_delay = 2.0  # ComfyUI queues the job but its answer never arrives in time
        record = await pool.submit(workflow("basic_empty_invert_save"))
        fake.reply_delay = 0.0
        done = await pool.wait(record.job_id, 5)
    assert done.state is JobState.SUCCEEDED
    assert len(fake.prompts) == 1


async def test_a_failing_server_is_marked_down_then_retried_after_the_delay(tmp_path: Path) -> None:
    import httpx

    now = [1000.0]
    cfg = ComfyUISettings(urls=[], request_timeout_seconds=5, down_retry_seconds=30)
    async with serve_fake() as fake, httpx.AsyncClient() as http, anyio.create_task_group() as tg:
        dead = "http://127.0.0.1:9"
        pool = ComfyUIPool(
            [dead, fake.url], http, settings=cfg, task_group=tg, outputs_dir=tmp_path, clock=lambda: now[0]
        )
        first = await pool.submit(workflow("basic_empty_invert_save"))
        marked = {s.url: s.marked_down for s in await pool.status()}
        await pool.wait(first.job_id, 5)
        second = await pool.submit(workflow("basic_changed_prefix"))  # within the delay: dead one skipped
        skipped_until = {s.client.url: s.down_until for s in pool.servers()}[dead]
        now[0] += 31
        third = await pool.submit(workflow("basic_empty_invert_save"))  # after it: tried (and failing) again
        retried_until = {s.client.url: s.down_until for s in pool.servers()}[dead]
        assert first.server == second.server == third.server == fake.url
        assert marked == {dead: True, fake.url: False}
        assert skipped_until == 1030.0 and retried_until == 1061.0
        tg.cancel_scope.cancel()


async def test_binary_preview_frames_and_broadcasts_are_ignored(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        fake.preview_frames = True
        seen: list[float] = []

        async def progress(value: float, total: float | None, message: str | None) -> None:
            seen.append(value)

        record = await pool.submit(workflow("txt2img_sd15"))
        done = await pool.wait(record.job_id, 5, progress)
    assert fake.binary_sent == 3  # one per sampler step of txt2img_sd15
    assert done.state is JobState.SUCCEEDED and len(done.saved) == 1
    assert seen[-1] == 100.0


async def test_a_job_removed_from_the_queue_by_someone_else_is_reported_lost(tmp_path: Path) -> None:
    import httpx

    async with serve_fake() as fake, pool_for([fake.url], tmp_path, job_check_seconds=0.1) as pool:
        fake.hold_class = "KSampler"
        await pool.submit(workflow("txt2img_sd15"))
        second = workflow("txt2img_sd15")
        second["3"]["inputs"]["seed"] = 5
        queued = await pool.submit(second)
        async with httpx.AsyncClient() as http:
            await http.post(f"{fake.url}/queue", json={"clear": True})  # e.g. from the ComfyUI web page
        with anyio.fail_after(5):
            done = await pool.wait(queued.job_id, 5)
        fake.hold_release.set()
    assert done.state is JobState.LOST
    assert done.error is not None and "removed from its queue" in done.error


async def test_without_a_websocket_the_job_is_queued_anyway_and_followed_by_polling(tmp_path: Path) -> None:
    running = anyio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        if message and message.startswith("running"):
            running.set()

    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        fake.refuse_ws = True
        fake.hold_class = "KSampler"
        record = await pool.submit(workflow("txt2img_sd15"), seed=42)
        assert not record.live_progress and "no live progress" in record.warnings[0]
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.wait, record.job_id, 5, progress)
            with anyio.fail_after(5):
                await running.wait()  # seen in /queue's running list, not from an event
            fake.hold_release.set()
        done = await pool.wait(record.job_id, 5)
        second = workflow("txt2img_sd15")
        second["3"]["inputs"]["seed"] = 7
        again = await pool.wait((await pool.submit(second)).job_id, 5)
    assert done.state is again.state is JobState.SUCCEEDED
    assert [Path(s.path).read_bytes() for s in done.saved] == [fake.image_bytes]
    assert len(again.saved) == 1 and again.saved[0].path != done.saved[0].path
    assert fake.sockets == {} and fake.ws_refused == 1  # the socket is not tried again for every job
    assert ("GET", f"/history/{record.prompt_id}") in fake.requests


async def test_without_a_websocket_failures_and_cancels_still_come_through(tmp_path: Path) -> None:
    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        fake.refuse_ws = True
        fake.fail_class = "KSampler"
        failed = await pool.wait((await pool.submit(workflow("txt2img_sd15"))).job_id, 5)
        fake.fail_class = None
        fake.hold_class = "KSampler"
        second = workflow("txt2img_sd15")
        second["3"]["inputs"]["seed"] = 7
        record = await pool.submit(second)
        with anyio.fail_after(5):
            await fake.hold_reached.wait()
        stopped = await pool.cancel(record.job_id)
    assert failed.state is JobState.FAILED and failed.error is not None
    assert "KSampler (node 3) failed" in failed.error and "out of memory" in failed.error
    assert stopped.state is JobState.INTERRUPTED


async def test_a_websocket_that_never_answers_delays_the_job_only_by_its_open_timeout(tmp_path: Path) -> None:
    settings = {"request_timeout_seconds": 30, "ws_open_timeout_seconds": 0.3}
    async with serve_fake() as fake, pool_for([fake.url], tmp_path, **settings) as pool:
        fake.hang_ws = True
        with anyio.fail_after(5):  # bounded by the request timeout instead, this would take 30 s
            record = await pool.submit(workflow("txt2img_sd15"))
            done = await pool.wait(record.job_id, 5)
            again = await pool.wait((await pool.submit(workflow("basic_empty_invert_save"))).job_id, 5)
    assert fake.ws_hung == 1  # the stuck socket is not tried again for the next job
    assert not record.live_progress and "no live progress" in record.warnings[0]
    assert done.state is again.state is JobState.SUCCEEDED
    assert len(done.saved) == 1 and len(again.saved) == 2


async def test_a_removed_server_gets_no_more_jobs(tmp_path: Path) -> None:
    async with serve_fake() as a, serve_fake() as b, pool_for([a.url, b.url], tmp_path) as pool:
        assert pool.remove_server(b.url + "/") is True
        assert pool.remove_server(b.url) is False
        records = []
        for color in (1, 2):
            wf = workflow("basic_empty_invert_save")
            wf["1"]["inputs"]["color"] = color
            records.append(await pool.submit(wf))
        done = [await pool.wait(r.job_id, 5) for r in records]
    assert pool.urls == [a.url]
    assert [d.server for d in done] == [a.url, a.url] and not b.prompts


async def test_a_socket_that_will_not_reopen_mid_job_hands_the_job_to_polling(tmp_path: Path) -> None:
    polling = anyio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        if message and message.endswith("(no live progress)"):
            polling.set()

    async with serve_fake() as fake, pool_for([fake.url], tmp_path) as pool:
        fake.hold_class = "KSampler"
        record = await pool.submit(workflow("txt2img_sd15"))
        with anyio.fail_after(5):
            await fake.hold_reached.wait()
        fake.refuse_ws = True  # e.g. a proxy in front of ComfyUI restarted without websocket support
        for ws in [ws for socks in fake.sockets.values() for ws in socks]:
            await ws.close(code=1011)
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.wait, record.job_id, 10, progress)
            with anyio.fail_after(10):
                await polling.wait()  # the job still runs (held): it must not have been given up as lost
            fake.hold_release.set()
        done = await pool.wait(record.job_id, 5)
    assert done.state is JobState.SUCCEEDED and len(done.saved) == 1
    assert not done.live_progress and any("would not reopen" in w for w in done.warnings)
    assert fake.ws_refused == 4  # the first try plus three more, then no more
