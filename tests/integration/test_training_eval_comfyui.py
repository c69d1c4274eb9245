"""train_evaluate draws a finished run's saves side by side on a (protocol-faithful fake) ComfyUI and answers with
one labelled contact sheet; the LoRA files are put into the ComfyUI's models/loras folder by Ategnatos itself.

The run is real (the stand-in trainer under the supervisor, on this machine); the fake ComfyUI lists the files in
its ``models_dir`` as ComfyUI lists its models folder.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from PIL import Image

from ategnatos_mcp.server import build_app, build_server
from ategnatos_mcp.settings import Settings, load_settings
from ategnatos_mcp.training.execution import HostRegistry
from tests.support.fake_comfyui import FakeComfyUI, serve_fake
from tests.support.fake_install import make_fake_install
from tests.support.ink_run import PLAN, ink_dataset

pytestmark = pytest.mark.integration

ANSWER_BUDGET = 20_000  # characters of text and of JSON Claude Code takes from one answer


@dataclass
class Trained:
    client: Client
    fake: FakeComfyUI
    home: Path
    models: Path
    saves: list[Path]
    settings: Settings
    env: dict[str, str]

    @asynccontextmanager
    async def another_server(self) -> AsyncIterator[Client]:
        """A second server process on the same project (as a new conversation would start)."""
        app = build_app(self.settings)

        async def no_ssh():  # type: ignore[no-untyped-def]
            raise AssertionError("local host only")

        app.hosts = HostRegistry(self.settings.workspace_dir / "training", no_ssh, local_env=self.env)
        async with Client(build_server(self.settings, app=app), raise_exceptions=False) as client:
            yield client


async def _gates_1_and_2(client: Client, home: Path, plan: dict[str, Any] | None) -> None:
    ink_dataset(home)
    audit = await client.call_tool(
        "dataset_audit", {"path": "workspace/datasets/ink", "training_name": "ink", "trigger_word": "ink_style"}
    )
    assert not audit.is_error, audit.content
    planned = await client.call_tool("train_plan", plan or PLAN)
    assert not planned.is_error, planned.content
    config_hash = planned.structured_content["config_hash"]  # type: ignore[index]
    confirmed = await client.call_tool("train_confirm", {"name": "ink", "config_hash": config_hash})
    assert not confirmed.is_error, confirmed.content


@asynccontextmanager
async def trained_run(
    home: Path, tmp_path: Path, *, models_dir: bool = True, plan: dict[str, Any] | None = None
) -> AsyncIterator[Trained]:
    """A run trained to the end on this machine, and a fake ComfyUI whose models folder is ``models``."""
    models = tmp_path / "ComfyUI" / "models"
    (models / "loras").mkdir(parents=True)
    async with serve_fake() as fake:
        fake.models_dir = models
        overrides: dict[str, Any] = {"comfyui": {"models_dir": str(models)}} if models_dir else {}
        settings = load_settings(env={"ATEGNATOS_HOME": str(home), "ATEGNATOS_COMFYUI_URL": fake.url}, **overrides)
        app = build_app(settings)
        install = make_fake_install(tmp_path / "install")

        async def no_ssh():  # type: ignore[no-untyped-def]
            raise AssertionError("local host only")

        app.hosts = HostRegistry(settings.workspace_dir / "training", no_ssh, local_env=install.env)
        async with Client(build_server(settings, app=app), raise_exceptions=False) as client:
            await _gates_1_and_2(client, home, plan)
            for tool, args in (
                ("train_validate_environment", {"backend_dir": install.backend_dirs["kohya"]}),
                ("train_dry_run", {"wait_seconds": 60}),
                ("launch_training", {}),
                ("training_status", {"wait_seconds": 60}),
            ):
                result = await client.call_tool(tool, {"name": "ink", **args})
                assert not result.is_error, (tool, result.content)
            report = result.structured_content
            assert report is not None and report["state"] == "succeeded", report
            assert "train_evaluate action='keep'" in report["next_step"]
            saves = [Path(c["file"]) for c in report["checkpoints"]]
            yield Trained(client, fake, home, models, saves, settings, install.env)


def _loras(prompt: dict[str, Any]) -> list[tuple[str, float]]:
    return [
        (node["inputs"]["lora_name"], node["inputs"]["strength_model"])
        for node in prompt.values()
        if node["class_type"] in ("LoraLoader", "LoraLoaderModelOnly")
    ]


def _inputs(prompt: dict[str, Any], class_type: str) -> dict[str, Any]:
    return next(node["inputs"] for node in prompt.values() if node["class_type"] == class_type)


async def test_the_default_sheet_is_the_last_three_saves_at_weights_0_07_1_in_one_labelled_image(
    home: Path, tmp_path: Path
) -> None:
    async with trained_run(home, tmp_path) as run:
        fake = run.fake
        fake.add_model("checkpoints", "sdxl.safetensors")  # the run's base model (/models/sdxl.safetensors)
        result = await run.client.call_tool("train_evaluate", {"name": "ink", "wait_seconds": 60})
        assert not result.is_error, result.content
        answer = result.structured_content
        assert answer is not None and answer["state"] == "done", answer

        last_three = run.saves[-3:]
        epochs = len(run.saves)
        assert answer["saves"] == [f"epoch {epochs - 2}", f"epoch {epochs - 1}", f"final (epoch {epochs})"]
        assert answer["weights"] == [0.0, 0.7, 1.0] and answer["prompts"] == [PLAN["sample_prompts"][0]]
        assert answer["images_done"] == answer["images_total"] == 7  # one baseline + 3 saves x 2 weights
        assert answer["models"] == {"checkpoint": "sdxl.safetensors"}

        # Ategnatos put the saves into ComfyUI's models/loras itself, byte for byte.
        for save in last_three:
            placed = run.models / "loras" / "ategnatos" / "ink" / save.name
            assert placed.read_bytes() == save.read_bytes()

        # What ComfyUI drew: the run's own checkpoint, one seed, the baseline at strength 0, each save at 0.7 and 1.
        assert len(fake.prompts) == 7
        assert {_inputs(p, "CheckpointLoaderSimple")["ckpt_name"] for p in fake.prompts} == {"sdxl.safetensors"}
        assert len({_inputs(p, "KSampler")["seed"] for p in fake.prompts}) == 1
        drawn = sorted(lora for p in fake.prompts for lora in _loras(p))
        names = [f"ategnatos/ink/{s.name}" for s in last_three]
        assert drawn == sorted([(names[0], 0.0), *((n, w) for n in names for w in (0.7, 1.0))])

        # One picture back: the whole sheet, labelled, also saved full size under workspace/.
        [picture] = [c for c in result.content if c.type == "image"]
        assert picture.mime_type == "image/jpeg"  # type: ignore[union-attr]
        sheet = Path(answer["sheet"])
        assert sheet.is_relative_to(run.home / "workspace") and sheet.suffix == ".png"
        with Image.open(sheet) as img:
            assert img.width == 12 + 200 + 3 * (384 + 12)  # the row labels + three weight columns
        with Image.open(io.BytesIO(__import__("base64").b64decode(picture.data))) as shown:  # type: ignore[union-attr]
            assert shown.format == "JPEG" and shown.width <= 1536
        text = result.content[0].text  # type: ignore[union-attr]
        assert "rows are the saves" in text and "action='keep'" in text and str(sheet) in text
        assert len(text) < ANSWER_BUDGET and len(json.dumps(answer)) < ANSWER_BUDGET
        eval_md = (run.home / "grimoire" / "training" / "ink" / "eval.md").read_text(encoding="utf-8")
        assert f"Contact sheet: {sheet}" in eval_md and "| no LoRA (weight 0) | weight 0.7 | weight 1 |" in eval_md

        again = await run.client.call_tool("train_evaluate", {"name": "ink", "wait_seconds": 0})
        assert again.structured_content["sheet"] == str(sheet)  # type: ignore[index]
        assert len(fake.prompts) == 7  # the same question: the same sheet, nothing drawn twice
        assert len([c for c in again.content if c.type == "image"]) == 1


async def test_epochs_weights_prompts_checkpoint_and_the_artists_reference_are_honoured(
    home: Path, tmp_path: Path
) -> None:
    async with trained_run(home, tmp_path) as run:
        run.fake.add_model("checkpoints", "my_sdxl_finetune.safetensors")
        reference = run.home / "workspace" / "reference.png"
        Image.new("RGB", (300, 200), (200, 30, 30)).save(reference)
        result = await run.client.call_tool(
            "train_evaluate",
            {
                "name": "ink",
                "epochs": [1, 2],
                "weights": [0.5, 1.0],
                "prompts": ["ink_style, a fox", "ink_style, a boat"],
                "checkpoint": "my_sdxl_finetune.safetensors",
                "reference_image": "workspace/reference.png",
                "seed": 7,
                "wait_seconds": 60,
            },
        )
        answer = result.structured_content
        assert answer is not None and answer["state"] == "done", result.content
        assert answer["saves"] == ["epoch 1", "epoch 2"] and answer["weights"] == [0.5, 1.0]
        assert answer["images_total"] == 8  # 2 prompts x 2 saves x 2 weights, no baseline asked
        assert {_inputs(p, "CheckpointLoaderSimple")["ckpt_name"] for p in run.fake.prompts} == {
            "my_sdxl_finetune.safetensors"
        }
        assert {_inputs(p, "KSampler")["seed"] for p in run.fake.prompts} == {7}
        with Image.open(answer["sheet"]) as img:
            assert img.width == 12 + 200 + 3 * (384 + 12)  # the reference column + two weights
            rows = 4  # each save once per prompt
            first_row_middle = img.height - 12 - rows * (384 + 12) + 192
            assert img.getpixel((12 + 200 + 192, first_row_middle)) == (200, 30, 30)  # the reference, beside row 1
            assert img.getpixel((12 + 200 + 192, first_row_middle + 384 + 12)) != (200, 30, 30)  # and only there


async def test_a_base_model_comfyui_lacks_is_refused_by_name_and_never_replaced(home: Path, tmp_path: Path) -> None:
    async with trained_run(home, tmp_path) as run:
        run.fake.add_model("checkpoints", "sd_xl_base_1.0.safetensors")  # another SDXL: not the run's base model
        result = await run.client.call_tool("train_evaluate", {"name": "ink", "wait_seconds": 30})
        assert result.is_error
        text = result.content[0].text  # type: ignore[union-attr]
        assert "the run's base model '/models/sdxl.safetensors' is not in models/checkpoints" in text
        assert "sd_xl_base_1.0.safetensors" in text  # what it has instead, named
        assert "the LoRA files are not the problem" in text and "checkpoint=" in text
        assert run.fake.prompts == []  # nothing was drawn with a stand-in model


async def test_without_a_known_lora_folder_the_refusal_says_how_to_name_it(home: Path, tmp_path: Path) -> None:
    async with trained_run(home, tmp_path, models_dir=False) as run:
        run.fake.add_model("checkpoints", "sdxl.safetensors")
        result = await run.client.call_tool("train_evaluate", {"name": "ink", "wait_seconds": 30})
        assert result.is_error
        text = result.content[0].text  # type: ignore[union-attr]
        assert "I can't put the LoRA files" in text and "models_dir" in text
        assert run.fake.prompts == []


async def test_the_kept_save_comes_home_registered_with_provenance_and_art_prompt_offers_it(
    home: Path, tmp_path: Path
) -> None:
    async with trained_run(home, tmp_path) as run:
        run.fake.add_model("checkpoints", "sdxl.safetensors")
        sheet = await run.client.call_tool("train_evaluate", {"name": "ink", "wait_seconds": 60})
        assert sheet.structured_content["state"] == "done", sheet.content  # type: ignore[index]
        epoch = len(run.saves) - 1
        picked = run.saves[-2]  # the artist liked the row before the final one, at 0.7

        kept = await run.client.call_tool(
            "train_evaluate",
            {"name": "ink", "action": "keep", "epoch": epoch, "weight": 0.7, "verdict": "ink lines clear, no noise"},
        )
        assert not kept.is_error, kept.content
        answer = kept.structured_content
        assert answer is not None and answer["state"] == "done", answer
        home_copy = run.home / "workspace" / "loras" / "ink" / picked.name
        assert answer["kept"]["path"] == str(home_copy) and home_copy.read_bytes() == picked.read_bytes()
        name = f"ategnatos/ink/{picked.name}"
        assert answer["kept"]["name"] == name and name in answer["next_step"] and "art_prompt" in answer["next_step"]

        studio = json.loads((run.home / "grimoire" / ".state" / "studio.json").read_text(encoding="utf-8"))
        [entry] = studio["loras"]
        assert entry["name"] == name and entry["trigger_words"] == ["ink_style"] and entry["base_model"] == "sdxl"
        assert (entry["weight_min"], entry["weight_max"]) == (0.55, 0.85) and entry["location"] == str(home_copy)
        provenance = entry["provenance"]
        gates = json.loads((run.home / "grimoire" / ".state" / "training+ink.json").read_text(encoding="utf-8"))
        assert provenance["run"] == "ink" and provenance["base_model"] == "/models/sdxl.safetensors"
        assert provenance["config_hash"] == gates["confirmation"]["config_hash"]
        assert (
            provenance["dataset_hash"] and provenance["dataset_hash"] == gates["planned_config"]["dataset_fingerprint"]
        )
        assert (provenance["epoch"], provenance["weight"], provenance["trigger_word"]) == (epoch, 0.7, "ink_style")
        assert (
            provenance["verdict"] == "ink lines clear, no noise"
            and provenance["sheet"] == sheet.structured_content["sheet"]
        )  # type: ignore[index]
        assert provenance["source"] == f"local:{picked}" and len(provenance["sha256"]) == 64
        assert name in (run.home / "grimoire" / "studio.md").read_text(encoding="utf-8")
        assert "ink lines clear" in (run.home / "grimoire" / "training" / "ink" / "eval.md").read_text(encoding="utf-8")

        offered = await run.client.call_tool("art_prompt", {"intent": "a harbour at dawn", "family": "sdxl"})
        assert name in offered.structured_content["draft"]["available_loras"]  # type: ignore[index]
        used = await run.client.call_tool(
            "art_prompt", {"intent": "a harbour at dawn", "family": "sdxl", "loras": [name]}
        )
        assert not used.is_error, used.content
        draft = used.structured_content["draft"]  # type: ignore[index]
        assert "ink_style" in draft["positive"]  # its trigger word, added by itself
        assert [(lora["name"], lora["weight"]) for lora in draft["loras"]] == [(name, 0.7)]  # the weight picked
        submit = used.structured_content["comfyui_submit"]  # type: ignore[index]
        assert submit is not None and {"name": name, "weight": 0.7} in submit["loras"]
        # (art_prompt names no checkpoint unless the studio lists one: the artist says which, as the sheet used)
        params = {**submit["params"], "checkpoint": "sdxl.safetensors"}
        drawn = await run.client.call_tool("comfyui_submit", {**submit, "params": params, "wait_seconds": 30})
        assert not drawn.is_error and drawn.structured_content["state"] == "succeeded", drawn.content  # type: ignore[index]
        assert (name, 0.7) in _loras(run.fake.prompts[-1])  # ComfyUI finds it under that name


async def test_a_sheet_cut_short_by_a_server_stopping_is_finished_by_the_next_call(home: Path, tmp_path: Path) -> None:
    async with trained_run(home, tmp_path) as run:
        fake = run.fake
        fake.add_model("checkpoints", "sdxl.safetensors")
        fake.hold_class = "KSampler"  # ComfyUI is busy: the first picture waits
        async with run.another_server() as first:
            started = await first.call_tool("train_evaluate", {"name": "ink", "wait_seconds": 0})
            answer = started.structured_content
            assert answer is not None and answer["state"] in ("placing", "rendering"), started.content
            assert answer["images_done"] == 0 and answer["images_total"] == 7
            assert "Call train_evaluate again with the same arguments" in answer["next_step"]
            assert not [c for c in started.content if c.type == "image"]
            with anyio.fail_after(30):
                await fake.hold_reached.wait()
        # That server is gone (its background work with it); the pictures it queued are unknown to the next one.
        fake.hold_release.set()
        finished = await run.client.call_tool("train_evaluate", {"name": "ink", "wait_seconds": 60})
        answer = finished.structured_content
        assert answer is not None and answer["state"] == "done", finished.content
        assert answer["images_done"] == 7 and all(cell["image"] for cell in answer["cells"])
        assert len([c for c in finished.content if c.type == "image"]) == 1


async def test_pictures_comfyui_fails_to_make_are_named_on_the_sheet_and_in_the_answer(
    home: Path, tmp_path: Path
) -> None:
    async with trained_run(home, tmp_path) as run:
        run.fake.add_model("checkpoints", "sdxl.safetensors")
        run.fake.fail_class = "KSampler"
        result = await run.client.call_tool("train_evaluate", {"name": "ink", "wait_seconds": 60})
        answer = result.structured_content
        assert answer is not None and answer["state"] == "done", result.content
        assert all(cell["image"] is None and cell["error"] for cell in answer["cells"])
        text = result.content[0].text  # type: ignore[union-attr]
        assert "7 picture(s) could not be made" in text and "simulated out of memory" in text
        assert Path(answer["sheet"]).is_file()  # the sheet still shows what happened, cell by cell

        run.fake.fail_class = None  # the artist freed the GPU: asking again draws the failed pictures again
        again = await run.client.call_tool("train_evaluate", {"name": "ink", "wait_seconds": 60})
        answer = again.structured_content
        assert answer is not None and answer["state"] == "done", again.content
        assert all(cell["image"] and not cell["error"] for cell in answer["cells"])
        assert len(run.fake.prompts) == 14


async def test_a_flux_run_is_drawn_with_its_own_diffusion_model_text_encoders_and_vae(
    home: Path, tmp_path: Path
) -> None:
    flux = {**PLAN, "family": "flux1", "base_model": "/models/flux1-dev.safetensors", "gpu_vram_gb": 48}
    async with trained_run(home, tmp_path, plan=flux) as run:
        fake = run.fake
        fake.add_model("diffusion_models", "flux1-dev.safetensors")
        for encoder in ("clip_l.safetensors", "t5xxl_fp16.safetensors"):
            fake.add_model("text_encoders", encoder)
        fake.add_model("vae", "ae.safetensors")
        result = await run.client.call_tool("train_evaluate", {"name": "ink", "wait_seconds": 60})
        answer = result.structured_content
        assert answer is not None and answer["state"] == "done", result.content
        assert answer["models"] == {
            "model": "flux1-dev.safetensors",
            "clip_l": "clip_l.safetensors",
            "t5": "t5xxl_fp16.safetensors",
            "vae": "ae.safetensors",
        }
        for prompt in fake.prompts:
            assert _inputs(prompt, "UNETLoader")["unet_name"] == "flux1-dev.safetensors"
            assert _inputs(prompt, "DualCLIPLoader")["type"] == "flux"
            assert not [n for n in prompt.values() if n["class_type"] in ("CheckpointLoaderSimple", "LoraLoader")]
        drawn = sorted(lora for p in fake.prompts for lora in _loras(p))
        assert len(drawn) == 7 and {w for _n, w in drawn} == {
            0.0,
            0.7,
            1.0,
        }  # LoraLoaderModelOnly, as ComfyUI's FLUX examples
