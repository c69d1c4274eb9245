"""GpuService flows over the fake clouds: quotes, consent, budgets, vanished offers, lost creates, boot timeout,
teardown retries, reconcile and orphans."""

from __future__ import annotations

from pathlib import Path

import pytest

from ategnatos_mcp.errors import ConsentError, NotFoundError, UpstreamError
from ategnatos_mcp.providers import GPU_DOCUMENT, BudgetExceededError, Consent, GpuDocument, GpuService, OfferQuery
from ategnatos_mcp.settings import GpuSettings
from ategnatos_mcp.state import GrimoireStore
from ategnatos_mcp.studio import STUDIO_DOCUMENT, StudioInventory
from tests.support.cloud_specs import case
from tests.support.fake_clouds import FakeClock, FakeLambda, FakeRunPod, FakeVast, Probe, make_service

YES = Consent(confirmed=True)


@pytest.fixture
def store(tmp_path: Path) -> GrimoireStore:
    return GrimoireStore(tmp_path / "grimoire")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _quote(service: GpuService, **query: object) -> str:
    result = await service.find_offers(OfferQuery(**query))  # type: ignore[arg-type]
    assert result.offers, "expected at least one offer"
    return result.offers[0].quote_id


async def test_offers_are_sorted_by_price_across_providers_with_worst_case(
    store: GrimoireStore, clock: FakeClock
) -> None:
    service = make_service(store, [FakeRunPod(), FakeVast(), FakeLambda()], clock)
    result = await service.find_offers(OfferQuery(min_vram_gb=24, hours=2))
    assert [o.within_budget for o in result.offers] == [o.usd_per_hour <= 3.0 for o in result.offers]
    prices = [o.usd_per_hour for o in result.offers]
    assert prices == sorted(prices)
    cheapest = result.offers[0]
    assert (cheapest.provider, cheapest.gpu, cheapest.usd_per_hour) == ("vast", "RTX4090", 0.3325)
    # Vast bills bandwidth: the worst case adds a full disk of downloads (60 GB at $0.0039/GB).
    assert cheapest.worst_case_usd == pytest.approx(round(0.3325 * 2 + 0.0039 * 60 + 0.005, 2), abs=0.01)
    assert {o.provider for o in result.offers} == {"runpod", "vast", "lambda"}
    assert all(o.vram_gb >= 23.5 for o in result.offers)
    doc = await store.read(GPU_DOCUMENT, GpuDocument)
    assert set(doc.quotes) == {o.quote_id for o in result.offers}


async def test_a_provider_answering_garbage_is_skipped_not_fatal(store: GrimoireStore, clock: FakeClock) -> None:
    runpod, vast = FakeRunPod(), FakeVast()
    vast.offers = [{"id": "not-a-number"}]
    runpod.pods["weird"] = {"unexpected": True, "_boot": ["RUNNING"]}
    service = make_service(store, [runpod, vast], clock)
    result = await service.find_offers(OfferQuery(gpu="4090"))
    assert {o.provider for o in result.offers} == {"runpod"}
    assert result.not_searched == ["Vast.ai (answered in a form Ategnatos does not understand)"]
    listing = await service.instances()
    assert listing.notes == [
        "RunPod answered in a form Ategnatos does not understand; its instances may be out of date."
    ]


async def test_gpu_filter_and_sold_out_regions(store: GrimoireStore, clock: FakeClock) -> None:
    service = make_service(store, [FakeRunPod(), FakeLambda()], clock)
    result = await service.find_offers(OfferQuery(gpu="A6000"))
    assert result.offers == []  # Lambda's A6000 has no region with capacity; RunPod's catalog has none
    result = await service.find_offers(OfferQuery(gpu="a100"))
    assert result.offers == []  # RunPod's A100 availability is NONE


async def test_spinup_with_confirm_rents_once_and_waits_for_ssh(store: GrimoireStore, clock: FakeClock) -> None:
    runpod = FakeRunPod()
    probe = Probe()
    service = make_service(store, [runpod], clock, probe=probe)
    quote_id = await _quote(service, gpu="4090")
    result = await service.spinup(quote_id, YES, label="lora training")
    assert result.instance.provider == "runpod" and result.instance.name.startswith("ategnatos-")
    assert result.instance.name.endswith("-lora-training")
    ready = await service.wait_ready(result.instance.key, 60)
    assert ready.ready and (ready.ssh_host, ready.ssh_port) == ("195.26.233.57", 40145)
    assert probe.asked == [("195.26.233.57", 40145, "root")]
    assert len(runpod.calls("POST", "/v2/pods")) == 1
    # The account key was registered (merged, not replaced) before creating.
    assert runpod.keys[-1].startswith("ssh-ed25519") and len(runpod.keys) == 2
    studio = await store.read(STUDIO_DOCUMENT, StudioInventory)
    assert [(i.provider, i.instance_id, i.ssh_port) for i in studio.instances] == [("runpod", ready.instance_id, 40145)]
    with pytest.raises(ConsentError):
        await service.spinup(quote_id, YES)  # a quote rents once


async def test_without_a_yes_nothing_is_rented(store: GrimoireStore, clock: FakeClock) -> None:
    runpod = FakeRunPod()
    service = make_service(store, [runpod], clock)
    quote_id = await _quote(service, gpu="4090")
    with pytest.raises(ConsentError) as refused:
        await service.spinup(quote_id, Consent(confirmed=False))
    assert "$0.34 per hour" in refused.value.message and "confirm=true" in refused.value.hint

    async def say_no(question: str) -> bool:
        return False

    with pytest.raises(ConsentError):
        await service.spinup(quote_id, Consent(ask=say_no, confirmed=True))  # the dialog wins over confirm=true

    async def broken(question: str) -> bool:
        raise RuntimeError("client went away")

    with pytest.raises(ConsentError):
        await service.spinup(quote_id, Consent(ask=broken))
    assert runpod.calls("POST", "/v2/pods") == []


async def test_expired_quote_is_refused(store: GrimoireStore, clock: FakeClock) -> None:
    runpod = FakeRunPod()
    service = make_service(store, [runpod], clock, caps=GpuSettings(quote_ttl_seconds=60))
    quote_id = await _quote(service, gpu="4090")
    clock.advance(61)
    with pytest.raises(ConsentError) as refused:
        await service.spinup(quote_id, YES)
    assert "expired" in refused.value.message
    with pytest.raises(NotFoundError):
        await service.spinup("q-nope", YES)
    assert runpod.calls("POST", "/v2/pods") == []


async def test_price_rise_needs_a_new_yes(store: GrimoireStore, clock: FakeClock) -> None:
    runpod = FakeRunPod()
    service = make_service(store, [runpod], clock)
    quote_id = await _quote(service, gpu="4090")
    runpod.set_price("NVIDIA GeForce RTX 4090", community=0.79)
    with pytest.raises(ConsentError) as refused:
        await service.spinup(quote_id, YES)
    assert "$0.34/h to $0.79/h" in refused.value.message
    assert runpod.calls("POST", "/v2/pods") == []
    new_quote = refused.value.hint.split("quote_id '")[1].split("'")[0]
    asked: list[str] = []

    async def yes(question: str) -> bool:
        asked.append(question)
        return True

    result = await service.spinup(new_quote, Consent(ask=yes))
    assert result.instance.usd_per_hour == pytest.approx(0.79)  # the pod's own cost field
    assert "$0.79 per hour" in asked[0]


async def test_a_dialog_yes_only_covers_the_price_it_showed(store: GrimoireStore, clock: FakeClock) -> None:
    runpod = FakeRunPod()
    service = make_service(store, [runpod], clock)
    quote_id = await _quote(service, gpu="4090")
    with pytest.raises(ConsentError):
        await service.spinup(quote_id, Consent(dialog=True, approved=True))  # nothing was ever shown
    assert "$0.34 per hour" in await service.consent_question(quote_id)
    runpod.set_price("NVIDIA GeForce RTX 4090", community=0.36)  # rises while the user reads the dialog
    with pytest.raises(ConsentError) as refused:
        await service.spinup(quote_id, Consent(dialog=True, approved=True))
    assert "changed while the user was deciding" in refused.value.message
    assert runpod.calls("POST", "/v2/pods") == []
    assert "$0.36 per hour" in await service.consent_question(quote_id)
    rented = await service.spinup(quote_id, Consent(dialog=True, approved=True))
    assert rented.instance.usd_per_hour == pytest.approx(0.36)


async def test_budget_caps_refuse(store: GrimoireStore, clock: FakeClock) -> None:
    runpod = FakeRunPod()
    service = make_service(store, [runpod], clock, caps=GpuSettings(max_usd_per_hour=0.3))
    offers = await service.find_offers(OfferQuery(gpu="4090"))
    assert not any(o.within_budget for o in offers.offers) and "above your cap" in offers.offers[0].budget_note
    quote_id = offers.offers[0].quote_id
    with pytest.raises(BudgetExceededError) as refused:
        await service.spinup(quote_id, YES)
    assert refused.value.cap == "max_usd_per_hour"
    service = make_service(store, [runpod], clock, caps=GpuSettings(max_hours_per_instance=2))
    with pytest.raises(BudgetExceededError) as refused:
        await service.spinup(await _quote(service, gpu="4090", hours=3), YES)
    assert refused.value.cap == "max_hours_per_instance"
    service = make_service(store, [runpod], clock, caps=GpuSettings(monthly_usd_cap=3))
    with pytest.raises(BudgetExceededError) as refused:
        await service.spinup(await _quote(service, gpu="4090", hours=10), YES)
    assert refused.value.cap == "monthly_usd_cap"
    assert runpod.calls("POST", "/v2/pods") == []


async def test_vanished_offer_falls_to_the_next_candidate(store: GrimoireStore, clock: FakeClock) -> None:
    vast = FakeVast()
    vast.offers[1]["dph_total"] = vast.offers[0]["dph_total"]  # two equal offers of the same GPU
    vast.offers[1]["gpu_name"] = vast.offers[0]["gpu_name"]
    service = make_service(store, [vast], clock)
    quote_id = await _quote(service, gpu="4090")
    first = vast.offers[0]["id"]
    vast.gone.add(first)
    result = await service.spinup(quote_id, YES)
    assert vast.calls("PUT", f"/asks/{first}/") == []  # refreshed first: gone, so not even tried
    assert result.tried and "gone" in result.tried[0]
    assert len([r for r in vast.requests if r.method == "PUT" and "/asks/" in str(r.url)]) == 1


async def test_offer_taken_during_create_tries_the_next(store: GrimoireStore, clock: FakeClock) -> None:
    vast = FakeVast()
    vast.offers[1].update(dph_total=vast.offers[0]["dph_total"], gpu_name=vast.offers[0]["gpu_name"])
    vast.create_outcomes.append(case("vastai", "create_instance_errors", "offer_gone_404")["response"])
    service = make_service(store, [vast], clock)
    result = await service.spinup(await _quote(service, gpu="4090"), YES)
    asks = [str(r.url) for r in vast.requests if r.method == "PUT" and "/asks/" in str(r.url)]
    assert len(asks) == 2 and asks[0] != asks[1]
    assert result.instance.provider == "vast" and "rented by someone else" in result.tried[0]


@pytest.mark.parametrize("outcome", ["lost", "timeout"])
async def test_lost_create_answer_is_found_by_tag_without_a_second_rental(
    store: GrimoireStore, clock: FakeClock, outcome: str
) -> None:
    runpod = FakeRunPod()
    runpod.create_outcomes.append(outcome)  # the pod is created; the answer is a 502, or never comes
    service = make_service(store, [runpod], clock)
    result = await service.spinup(await _quote(service, gpu="4090"), YES)
    assert len(runpod.calls("POST", "/v2/pods")) == 1
    assert len(runpod.pods) == 1 and result.instance.instance_id in runpod.pods
    doc = await store.read(GPU_DOCUMENT, GpuDocument)
    assert doc.pending == {} and list(doc.rentals) == [result.instance.key]


async def test_lost_create_not_listed_is_not_retried_and_adopted_later(store: GrimoireStore, clock: FakeClock) -> None:
    runpod = FakeRunPod()
    runpod.create_outcomes.append("lost")
    service = make_service(store, [runpod], clock)
    quote_id = await _quote(service, gpu="4090")
    hidden: dict[str, dict[str, object]] = {}
    original_list = runpod._list

    def list_without_new_pods(request):  # the provider's list lags behind the create
        hidden.update(runpod.pods)
        runpod.pods.clear()
        try:
            return original_list(request)
        finally:
            runpod.pods.update(hidden)

    runpod.router.routes[2].side_effect = list_without_new_pods
    with pytest.raises(UpstreamError) as failed:
        await service.spinup(quote_id, YES)
    assert "did not try again" in failed.value.message
    assert len(runpod.calls("POST", "/v2/pods")) == 1
    runpod.router.routes[2].side_effect = original_list
    listing = await service.instances()
    assert any("confirmation was lost" in note for note in listing.notes)
    assert [v.instance_id for v in listing.instances] == list(runpod.pods)
    assert listing.instances[0].orphan is False


async def test_boot_timeout_terminates_and_records_the_cost(store: GrimoireStore, clock: FakeClock) -> None:
    runpod = FakeRunPod()
    runpod.boot = ["PROVISIONING"]  # never gets an SSH endpoint
    service = make_service(store, [runpod], clock, caps=GpuSettings(boot_timeout_seconds=300))
    result = await service.spinup(await _quote(service, gpu="4090"), YES)
    with pytest.raises(UpstreamError) as failed:
        await service.wait_ready(result.instance.key, 3600)
    assert "terminated" in failed.value.message
    assert runpod.pods == {}
    doc = await store.read(GPU_DOCUMENT, GpuDocument)
    rental = doc.rentals[result.instance.key]
    assert rental.status.value == "terminated" and rental.final_usd == pytest.approx(0.34 * 300 / 3600, abs=0.01)
    assert doc.ledger[-1].event == "boot-timeout"
    assert (await store.read(STUDIO_DOCUMENT, StudioInventory)).instances == []


async def test_failed_instance_is_terminated_at_once(store: GrimoireStore, clock: FakeClock) -> None:
    vast = FakeVast()
    vast.boot = ["loading", "exited"]
    service = make_service(store, [vast], clock)
    result = await service.spinup(await _quote(service, gpu="4090"), YES)
    with pytest.raises(UpstreamError) as failed:
        await service.wait_ready(result.instance.key, 600)
    assert "failed to start" in failed.value.message and vast.instances == {}


async def test_stopped_while_starting_is_terminated(store: GrimoireStore, clock: FakeClock) -> None:
    vast = FakeVast()
    vast.boot = ["loading", "stopped"]  # outbid / stopped by the host before it came up
    service = make_service(store, [vast], clock)
    result = await service.spinup(await _quote(service, gpu="4090"), YES)
    with pytest.raises(UpstreamError):
        await service.wait_ready(result.instance.key, 600)
    assert vast.instances == {}


async def test_still_starting_returns_after_the_wait(store: GrimoireStore, clock: FakeClock) -> None:
    lam = FakeLambda()
    lam.boot = ["booting", "booting", "booting", "active"]
    service = make_service(store, [lam], clock)
    result = await service.spinup(await _quote(service, gpu="A10"), YES)
    rental = await service.wait_ready(result.instance.key, 5)
    assert not rental.ready and rental.ended_at is None
    rental = await service.wait_ready(result.instance.key, 60)
    assert rental.ready and rental.ssh_user == "ubuntu" and rental.ssh_port == 22


async def test_teardown_retries_429_until_confirmed(store: GrimoireStore, clock: FakeClock) -> None:
    vast = FakeVast()
    service = make_service(store, [vast], clock)
    result = await service.spinup(await _quote(service, gpu="4090"), YES)
    rate_limited = case("vastai", "stop_start_destroy", "destroy_rate_limited")["response"]
    vast.delete_outcomes.extend(
        [rate_limited, {"status": 429, "text": "API requests too frequent endpoint threshold=4.5"}]
    )
    clock.advance(1800)
    torn = await service.teardown([result.instance.key])
    assert torn.items[0].outcome == "terminated"
    assert len(vast.calls("DELETE", "/instances/")) == 3 and vast.instances == {}
    assert torn.items[0].final_usd == pytest.approx(0.3325 / 2, abs=0.01)
    doc = await store.read(GPU_DOCUMENT, GpuDocument)
    assert doc.ledger[-1].event == "terminated"
    again = await service.teardown([result.instance.key])
    assert again.items[0].outcome == "already gone" and len(vast.calls("DELETE", "/instances/")) == 3
    assert len((await store.read(GPU_DOCUMENT, GpuDocument)).ledger) == len(doc.ledger)


async def test_runpod_429_waits_for_retry_after(store: GrimoireStore, clock: FakeClock) -> None:
    runpod = FakeRunPod()
    service = make_service(store, [runpod], clock)
    result = await service.spinup(await _quote(service, gpu="4090"), YES)
    runpod.delete_outcomes.append(case("runpod", "v2_errors", "rate_limited")["response"])
    clock.slept.clear()
    torn = await service.teardown([], everything=True)
    assert torn.items[0].outcome == "terminated" and clock.slept[0] == 12
    assert result.instance.instance_id not in runpod.pods


async def test_stop_explains_what_keeps_billing_and_lambda_cannot_stop(store: GrimoireStore, clock: FakeClock) -> None:
    runpod, lam = FakeRunPod(), FakeLambda()
    service = make_service(store, [runpod, lam], clock)
    pod = await service.spinup(await _quote(service, gpu="4090"), YES)
    stopped = await service.teardown([pod.instance.key], stop=True)
    assert stopped.items[0].outcome == "stopped" and "volume disk keeps billing" in stopped.items[0].still_billing
    listing = await service.instances()
    assert [v.status for v in listing.instances] == ["stopped"]
    vm = await service.spinup(await _quote(service, gpu="A10"), YES)
    refused = await service.teardown([vm.instance.key], stop=True)
    assert refused.items[0].outcome == "failed" and "cannot be stopped" in refused.items[0].message
    assert refused.unconfirmed == [vm.instance.key] and "gpu_teardown" in refused.next_step


async def test_orphans_are_found_and_offered_for_teardown(store: GrimoireStore, clock: FakeClock) -> None:
    runpod = FakeRunPod()
    foreign = runpod.add_pod("my-notebook")
    ours = runpod.add_pod("ategnatos-deadbeef-old")
    service = make_service(store, [runpod], clock)
    listing = await service.instances()
    assert listing.orphans == 2
    assert {v.instance_id for v in listing.instances if v.orphan} == {foreign, ours}
    assert any("not started through Ategnatos" in n for n in listing.notes)
    assert any("started by Ategnatos but missing" in n for n in listing.notes)
    assert listing.burn_usd_per_hour == pytest.approx(1.18)
    torn = await service.teardown([f"runpod:{ours}"])
    assert torn.items[0].outcome == "terminated" and set(runpod.pods) == {foreign}


async def test_hour_cap_is_enforced_at_reconcile(store: GrimoireStore, clock: FakeClock) -> None:
    runpod, lam = FakeRunPod(), FakeLambda()
    service = make_service(store, [runpod, lam], clock, caps=GpuSettings(max_hours_per_instance=4))
    pod = await service.spinup(await _quote(service, gpu="4090", hours=2), YES)
    vm = await service.spinup(await _quote(service, gpu="A10", hours=2), YES)
    for started in (pod, vm):
        assert (await service.wait_ready(started.instance.key, 60)).ready
    clock.advance(3 * 3600)
    listing = await service.instances()
    assert all(v.over_time_limit for v in listing.instances)  # past the planned 2 hours: flagged only
    assert len(runpod.calls("POST", "/action")) == 0 and lam.instances
    clock.advance(3600 + 60)
    listing = await service.instances(include_ended=True)
    status = {v.key: v.status for v in listing.instances}
    assert status == {pod.instance.key: "stopped", vm.instance.key: "terminated"}  # RunPod keeps its disk
    assert sum("cap of 4 hours" in note for note in listing.notes) == 2
    assert runpod.pods[pod.instance.instance_id]["status"] == "EXITED" and lam.instances == {}


async def test_instance_gone_at_the_provider_is_closed(store: GrimoireStore, clock: FakeClock) -> None:
    runpod = FakeRunPod()
    service = make_service(store, [runpod], clock)
    result = await service.spinup(await _quote(service, gpu="4090"), YES)
    runpod.pods.clear()
    clock.advance(3600)
    listing = await service.instances(include_ended=True)
    assert listing.instances[0].status == "terminated"
    assert listing.instances[0].cost_so_far_usd == pytest.approx(0.34, abs=0.01)
    assert any("no longer listed" in n for n in listing.notes)
    assert result.instance.key == listing.instances[0].key


async def test_payment_refusal_is_reported_without_trying_others(store: GrimoireStore, clock: FakeClock) -> None:
    runpod = FakeRunPod()
    runpod.create_outcomes.append(case("runpod", "v2_errors", "insufficient_balance")["response"])
    service = make_service(store, [runpod], clock)
    with pytest.raises(UpstreamError) as refused:
        await service.spinup(await _quote(service, gpu="4090"), YES)
    assert "balance is too low" in refused.value.message
    assert len(runpod.calls("POST", "/v2/pods")) == 1
    assert (await store.read(GPU_DOCUMENT, GpuDocument)).pending == {}


async def test_a_provider_failing_mid_reconcile_is_a_note_and_the_others_are_still_checked(
    store: GrimoireStore, clock: FakeClock
) -> None:
    runpod, lam = FakeRunPod(), FakeLambda()
    runpod.boot = ["PROVISIONING"]  # never comes up: the boot deadline will terminate it...
    service = make_service(store, [runpod, lam], clock, caps=GpuSettings(boot_timeout_seconds=300))
    await service.spinup(await _quote(service, gpu="4090"), YES)
    vm = await service.spinup(await _quote(service, gpu="A10"), YES)
    clock.advance(301)
    forbidden = {"status": 403, "json": {"title": "Forbidden", "status": 403, "detail": "not allowed"}}
    runpod.delete_outcomes.append(forbidden)  # ...but RunPod refuses the terminate
    listing = await service.instances()
    assert any(n.startswith("RunPod could not be fully checked: RunPod refused the API key") for n in listing.notes)
    assert vm.instance.key in [v.key for v in listing.instances]  # Lambda was reconciled all the same
