"""The golden paths walked with ONE view of each answer at a time, as each family of clients hands it to the model.

Structured-first (Claude Code, VS Code): the JSON of the structured content plus the pictures. Content-first (Claude
Desktop, the Inspector): the text plus the pictures. Every argument of every next call is read from what that view
showed; the call sequences are written out here. See tests/support/views.py.
"""

from __future__ import annotations

import json
import re

import pytest
from mcp import Client

from ategnatos_mcp.server import build_server
from ategnatos_mcp.settings import Settings
from ategnatos_mcp.wiring import Wiring
from tests.support.views import FAMILIES, Family, Seen, ViewWalker
from tests.unit.providers.fakes import FakeClock, FakeDeployer, FakeRunPod, make_service

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
