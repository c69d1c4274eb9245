"""The golden paths walked with ONE view of each answer at a time, as each family of clients hands it to the model.

Structured-first (Claude Code, VS Code): the JSON of the structured content plus the pictures. Content-first (Claude
Desktop, the Inspector): the text plus the pictures. Every argument of every next call is read from what that view
showed; the call sequences are written out here. See tests/support/views.py.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from mcp import Client

from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import Settings, load_settings
from ategnatos_mcp.training.execution import HostRegistry
from ategnatos_mcp.wiring import Wiring
from tests.support.datasets import generated_dataset
from tests.support.fake_clouds import FakeClock, FakeDeployer, FakeRunPod, make_service
from tests.support.fake_comfyui import serve_fake
from tests.support.fake_install import make_fake_install
from tests.support.ink_run import PLAN, ink_dataset
from tests.support.studio import studio
from tests.support.views import FAMILIES, Family, Seen, ViewWalker

by_view = pytest.mark.parametrize("family", FAMILIES)


def _listed(seen: Seen, label: str) -> list[str]:
    """The items of a ``label`` line in the text: 'Negative: a, b, c' -> [a, b, c]."""
    return [item.strip() for item in seen.find(rf"{re.escape(label)}:? (.*)").split(",")]


@by_view
async def test_renting_a_gpu_offers_refused_then_consented_then_torn_down(
    settings: Settings, app: Wiring, family: Family
) -> None:
    """offers -> spinup without the artist's yes (refused) -> spinup with it -> teardown."""
    cloud = FakeRunPod()
    app.gpu = make_service(app.store, [cloud], FakeClock())
    app.deployer = FakeDeployer()
    async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
        walk = ViewWalker(client, family)
        offers = await walk.call("gpu_offers", {"gpu": "4090", "hours": 3})
        assert offers.says("worst case", "gpu_spinup")
        quote = walk.pick(
            offers,
            structured=lambda d: d["offers"][0]["quote_id"],
            content=lambda s: s.find(r"— quote (q-[0-9a-f]+)"),
        )
        worst = walk.pick(
            offers,
            structured=lambda d: f"${d['offers'][0]['worst_case_usd']:.2f}",
            content=lambda s: s.find(r"worst case (\$[0-9.]+) — quote " + quote),
        )

        refused = await walk.call("gpu_spinup", {"quote_id": quote}, error=True)
        assert refused.says(worst, "keeps billing until it is torn down", "confirm=true")
        assert cloud.pods == {}  # nothing rented on a refusal
        again = {"quote_id": refused.find(r"quote_id '(q-[0-9a-f]+)'"), "confirm": refused.says("confirm=true")}

        rented = await walk.call("gpu_spinup", again)
        assert rented.says("keeps billing until it is torn down", "gpu_teardown")
        keys = walk.pick(
            rented,
            structured=lambda d: [d["instance"]["key"]],
            content=lambda s: json.loads(s.find(r"gpu_teardown with keys=(\[[^\]]*\])").replace("'", '"')),
        )
        assert len(cloud.pods) == 1

        down = await walk.call("gpu_teardown", {"keys": keys})
        assert down.says("terminated", "Final cost")
        assert walk.calls == ["gpu_offers", "gpu_spinup", "gpu_spinup", "gpu_teardown"]


@by_view
async def test_the_eye_never_neon_reaches_the_next_prompt(client: Client, family: Family) -> None:
    """eye_update NEVER neon -> eye_query -> art_prompt keeps neon out, and says so."""
    walk = ViewWalker(client, family)
    added = await walk.call(
        "eye_update",
        {"action": "add", "category": "color", "text": "neon colours", "level": "never", "terms": ["neon"]},
    )
    assert added.says("NEVER", "neon colours")
    query = await walk.call("eye_query", {"family": "sdxl", "request": "the mascot fox in a city at night"})
    negatives = walk.pick(query, structured=lambda d: d["negative_terms"], content=lambda s: _listed(s, "Negative"))
    assert "neon" in negatives
    prompt = await walk.call("art_prompt", {"intent": "the mascot fox in a city at night", "family": "sdxl"})
    negative = walk.pick(
        prompt, structured=lambda d: d["draft"]["negative"].split(", "), content=lambda s: _listed(s, "Negative")
    )
    assert any("neon" in term for term in negative)  # at NEVER's weight where the family has weights: (neon:1.3)
    # the ready comfyui_submit arguments are in both views
    submit = walk.pick(
        prompt, structured=lambda d: d["comfyui_submit"], content=lambda s: s.json_after("comfyui_submit arguments:")
    )
    assert submit["template"] == "txt2img-sdxl" and "neon" in submit["params"]["negative"]


# --- preparing a dataset: audit -> dedupe -> caption review and write -> structure --------------------------------
def _flat_series(tmp: Path, folder: Path) -> None:
    """A flat folder of a small generated series with planted copies (no captions yet)."""
    generated = generated_dataset(tmp, n=14, seed=4, dup_fraction=0.3, bad_per_kind=0)
    folder.mkdir(parents=True)
    for n, image in enumerate(sorted(p for p in (generated / "dataset").rglob("*") if p.suffix in IMAGES)):
        shutil.copy(image, folder / f"painting-{n:02d}{image.suffix}")


IMAGES = {".png", ".jpg", ".jpeg", ".webp"}


@by_view
async def test_preparing_a_dataset_audit_dedupe_captions_structure(
    client: Client, home: Path, tmp_path_factory: pytest.TempPathFactory, family: Family
) -> None:
    _flat_series(tmp_path_factory.getbasetemp(), home / "workspace" / "datasets" / "inkwash")
    walk = ViewWalker(client, family)
    audit = await walk.call("dataset_audit", {"path": "inkwash", "training_name": "inkwash"})
    assert audit.says("NO-GO")
    if audit.says("dataset_dedupe") or audit.says("appear more than once"):
        found = await walk.call("dataset_dedupe", {"path": "inkwash"})
        assert found.pictures >= 1  # one contact sheet per group, named in both views
        moved = await walk.call("dataset_dedupe", {"path": "inkwash", "action": "quarantine"})
        assert moved.says("quarantine")
    start: int | None = 0
    captioned = 0
    while start is not None:
        review = await walk.call(
            "dataset_captions", {"path": "inkwash", "mode": "review", "only_missing": True, "start": start}
        )
        paths = walk.pick(
            review,
            structured=lambda d: [i["path"] for i in d["review"]["items"] if not i["note"]],
            content=lambda s: re.findall(r"^- (\S+): \(no caption\) \[picture \d+\]", s.text, re.M),
        )
        assert review.pictures == len(paths)
        if paths:
            captions = [
                {"path": p, "caption": f"a hilly landscape, visible brush strokes, muted palette {p}"} for p in paths
            ]
            await walk.call("dataset_captions", {"path": "inkwash", "mode": "write", "captions": captions})
            captioned += len(paths)
        start = walk.pick(
            review,
            structured=lambda d: d["review"]["next_start"],
            content=lambda s: int(s.find(r"next batch with start=(\d+)")) if s.says("next batch with start=") else None,
        )
    assert captioned >= 10
    again = await walk.call("dataset_audit", {"path": "inkwash", "training_name": "inkwash"})
    assert again.says("GO: the dataset is ready")
    layout_call = walk.pick(
        again,
        structured=lambda d: d["next_step"],
        content=lambda s: s.find(r"Next step: (.*)"),
    )
    path = re.search(r"dataset_structure path='([^']+)'", layout_call)
    assert path is not None, layout_call
    laid = await walk.call("dataset_structure", {"path": path.group(1), "name": "inkwash"})
    assert laid.says("Kohya layout in", "train_plan")
    assert walk.calls[0] == "dataset_audit" and walk.calls[-1] == "dataset_structure"


# --- the art loop: prompt -> submit -> adjust -> submit -> approve -> export --------------------------------------
@by_view
async def test_the_art_loop_prompt_submit_adjust_approve_export(home: Path, family: Family) -> None:
    async with serve_fake() as fake, studio(home, fake) as client:
        fake.add_model("checkpoints", "sdxl_base.safetensors")
        walk = ViewWalker(client, family)
        where = {"project": "launch", "asset": "banner"}
        built = await walk.call(
            "art_prompt",
            {"intent": "the mascot fox on a hill at dawn", "family": "sdxl", "aspect_ratio": "16:9", **where},
        )
        args = walk.pick(
            built, structured=lambda d: d["comfyui_submit"], content=lambda s: s.json_after("comfyui_submit arguments:")
        )
        first = await walk.call("comfyui_submit", args)
        assert first.pictures >= 1 and first.says("Logged on launch/banner version 1")
        adjusted = await walk.call("art_prompt", {"mode": "adjust", "feedback": "warmer, less busy", **where})
        args = walk.pick(
            adjusted,
            structured=lambda d: d["comfyui_submit"],
            content=lambda s: s.json_after("comfyui_submit arguments:"),
        )
        second = await walk.call("comfyui_submit", args)
        assert second.says("version 2")
        await walk.call("art_iterations", {"action": "approve", **where})
        exported = await walk.call("asset_export", {"spec": "og-image", **where})
        assert exported.pictures == 1 and exported.says("1200x630")
        assert walk.calls == [
            "art_prompt",
            "comfyui_submit",
            "art_prompt",
            "comfyui_submit",
            "art_iterations",
            "asset_export",
        ]


# --- plan to evaluation on the stand-in trainer ----------------------------------------------------------------------
@by_view
async def test_training_from_plan_to_the_evaluation_sheet_and_the_kept_lora(
    home: Path, tmp_path: Path, family: Family
) -> None:
    ink_dataset(home)
    models = tmp_path / "ComfyUI" / "models"
    (models / "loras").mkdir(parents=True)
    async with serve_fake() as fake:
        fake.models_dir = models
        (models / "checkpoints").mkdir()
        (models / "checkpoints" / "sdxl.safetensors").write_bytes(b"stand-in base model")
        settings = load_settings(
            env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": fake.url},
            comfyui={"models_dir": str(models)},
        )
        app = build_app(settings)
        install = make_fake_install(tmp_path / "install")

        async def no_ssh():  # type: ignore[no-untyped-def]
            raise AssertionError("this machine only")

        app.hosts = HostRegistry(settings.workspace_dir / "training", no_ssh, local_env=install.env)
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            walk = ViewWalker(client, family)
            plan = await walk.call("train_plan", PLAN)
            # gate 1 is open for this run: the plan names the exact audit call
            audit_call = plan.find(r"(dataset_audit\(path=[^)]*\))")
            audit_args = dict(re.findall(r"(\w+)='([^']*)'", audit_call))
            await walk.call("dataset_audit", audit_args)
            config_hash = walk.pick(
                plan, structured=lambda d: d["config_hash"], content=lambda s: s.find(r"config_hash='([0-9a-f]{16})'")
            )
            confirmed = await walk.call("train_confirm", {"name": "ink", "config_hash": config_hash})
            assert confirmed.says("train_validate_environment")
            env = await walk.call(
                "train_validate_environment", {"name": "ink", "backend_dir": install.backend_dirs["kohya"]}
            )
            assert env.says("train_dry_run")
            dry = await walk.call("train_dry_run", {"name": "ink", "wait_seconds": 60})
            assert dry.says("launch_training")
            await walk.call("launch_training", {"name": "ink"})
            status = await walk.call("training_status", {"name": "ink", "wait_seconds": 60})
            assert status.says("succeeded") or status.says("Finished")
            assert status.says("train_evaluate")
            sheet = await walk.call("train_evaluate", {"name": "ink", "wait_seconds": 120})
            assert sheet.pictures == 1 and sheet.says("contact sheet")
            keep = walk.pick(
                sheet,
                structured=lambda d: d["next_step"],
                content=lambda s: s.find(r"Next step: (.*)"),
            )
            assert "action='keep'" in keep
            kept = await walk.call("train_evaluate", {"name": "ink", "action": "keep", "epoch": 2, "weight": 0.7})
            assert kept.says("registered in the studio")
            for seen in (plan, env, dry, status, sheet, kept):
                assert len(seen.text) < 20_000, (seen.tool, len(seen.text))  # within Claude Code's answer budget
