"""Stateful fake clouds built from the recorded examples, served to real provider clients through respx routes.

Every exchange is recorded so a test can check the bodies against the official specs. Test keys are fake but
recognisable, so a test can grep everything written for them.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import respx

from ategnatos_mcp.providers import DeployResult, GpuService, LambdaProvider, RunPodProvider, VastProvider
from ategnatos_mcp.settings import GpuSettings
from ategnatos_mcp.state import GrimoireStore
from tests.support.cloud_specs import case, example

RUNPOD_KEY = "rpa_TESTKEY_runpod_SHOULD_NEVER_LEAK_0001"
VAST_KEY = "vast_TESTKEY_SHOULD_NEVER_LEAK_0002"
LAMBDA_KEY = "secret_TESTKEY_lambda_SHOULD_NEVER_LEAK_0003"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleEx0001 ategnatos"


@dataclass
class Exchange:
    spec: str
    method: str
    url: str
    status: int
    request_json: Any
    response_json: Any


@dataclass
class FakeClock:
    """Time moves only when the code under test sleeps: no real waiting in tests."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _json(response: dict[str, Any]) -> httpx.Response:
    headers = dict(response.get("headers") or {})
    if "text" in response:
        return httpx.Response(response["status"], text=response["text"], headers=headers)
    if response.get("json") is None:
        return httpx.Response(response["status"], headers=headers)
    return httpx.Response(response["status"], json=response["json"], headers=headers)


class FakeCloud:
    """Base: a respx router + exchange log; subclasses add routes."""

    spec = ""
    base_url = ""
    key = ""

    def __init__(self) -> None:
        self.router = respx.Router(assert_all_called=False)
        self.exchanges: list[Exchange] = []
        self.requests: list[httpx.Request] = []
        self.create_outcomes: deque[str | dict[str, Any]] = deque()
        self.delete_outcomes: deque[dict[str, Any]] = deque()
        self.boot: list[str] = []
        self.created = 0
        # What a new instance really bills per hour (None: the catalogue price, as the real clouds do).
        self.charge: float | None = None
        # Status reads that answer "not found" right after a create (a new instance not listed yet).
        self.hidden_reads = 0
        # Instance lists that do not show new instances yet (a list lagging behind a create).
        self.hidden_lists = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.router.handler(request)
        response.read()
        body = request.content
        try:
            response_json = response.json() if response.content else None
        except ValueError:
            response_json = None
        self.exchanges.append(
            Exchange(
                self.spec,
                request.method,
                str(request.url),
                response.status_code,
                json.loads(body) if body else None,
                response_json,
            )
        )
        return response

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers={"Authorization": f"Bearer {self.key}"},
            transport=httpx.MockTransport(self.handle),
        )

    def calls(self, method: str, fragment: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and fragment in str(r.url)]

    def _next_status(self, record: dict[str, Any]) -> str:
        steps: list[str] = record["_boot"]
        return steps.pop(0) if len(steps) > 1 else steps[0]


class FakeRunPod(FakeCloud):
    spec = "runpod"
    base_url = "https://api.runpod.io/v2"
    key = RUNPOD_KEY

    def __init__(self) -> None:
        super().__init__()
        self.catalog = example("runpod", "v2_catalog_gpus")["response"]["json"]
        self.pods: dict[str, dict[str, Any]] = {}
        self.keys: list[str] = list(case("runpod", "v2_account_ssh_keys", "list")["response"]["json"]["keys"])
        self.boot = ["PROVISIONING", "RUNNING"]
        self.cost_in_create = True
        r = self.router
        r.get(path__regex=r"/v2/catalog/gpus$").mock(side_effect=lambda req: httpx.Response(200, json=self.catalog))
        r.post(path__regex=r"/v2/pods$").mock(side_effect=self._create)
        r.get(path__regex=r"/v2/pods$").mock(side_effect=self._list)
        r.get(path__regex=r"/v2/pods/(?P<pod>[^/]+)$").mock(side_effect=self._get)
        r.delete(path__regex=r"/v2/pods/(?P<pod>[^/]+)$").mock(side_effect=self._delete)
        r.post(path__regex=r"/v2/pods/(?P<pod>[^/]+)/action$").mock(side_effect=self._action)
        r.get(path__regex=r"/v2/account/ssh-keys$").mock(
            side_effect=lambda req: httpx.Response(200, json={"keys": self.keys})
        )
        r.put(path__regex=r"/v2/account/ssh-keys$").mock(side_effect=self._put_keys)
        r.post(path__regex=r"/graphql$").mock(
            return_value=_json(example("runpod", "graphql_myself_balance")["response"])
        )

    def set_price(self, gpu_id: str, **prices: float) -> None:
        for gpu in self.catalog["gpus"]:
            if gpu["id"] == gpu_id:
                gpu["price"].update(prices)

    def price(self, gpu_id: str, cloud: str) -> float:
        gpu = next(g for g in self.catalog["gpus"] if g["id"] == gpu_id)
        return gpu["price"][cloud.lower()]

    def add_pod(self, name: str, status: str = "RUNNING") -> str:
        pod = copy.deepcopy(example("runpod", "v2_get_pod_running")["response"]["json"])
        pod_id = f"foreign{len(self.pods)}"
        pod.update(id=pod_id, name=name, status=status)
        pod["_boot"] = [status]
        self.pods[pod_id] = pod
        return pod_id

    def _create(self, request: httpx.Request) -> httpx.Response:
        outcome = self.create_outcomes.popleft() if self.create_outcomes else "ok"
        if isinstance(outcome, dict):
            return _json(outcome)
        body = json.loads(request.content)
        self.created += 1
        pod = copy.deepcopy(example("runpod", "v2_create_pod")["response"]["json"])
        pod_id = f"pod{self.created:04d}xyz"
        pod.update(id=pod_id, name=body["name"], gpu={"id": body["gpu"]["id"], "count": body["gpu"]["count"]})
        pod.update(cloud=body["cloud"], ports=body["ports"], env=body["env"], disk=body["disk"])
        listed = round(self.price(body["gpu"]["id"], body["cloud"]) * body["gpu"]["count"], 4)
        pod["cost"] = self.charge if self.charge is not None else listed
        pod["_boot"] = list(self.boot)
        self.pods[pod_id] = pod
        if outcome == "lost":
            return _json(case("runpod", "v2_errors", "upstream_5xx")["response"])
        if outcome == "timeout":
            raise httpx.ReadTimeout("the answer never came", request=request)
        answer = self._public(pod)
        if not self.cost_in_create:
            del answer["cost"]  # the spec does not require it; then the first status read is the first price
        return httpx.Response(201, json=answer)

    def _public(self, pod: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in pod.items() if not k.startswith("_")}

    def _view(self, pod: dict[str, Any]) -> dict[str, Any]:
        status = self._next_status(pod)
        if status == "RUNNING" and pod["status"] != "RUNNING":
            running = example("runpod", "v2_get_pod_running")["response"]["json"]
            pod.update(ssh=copy.deepcopy(running["ssh"]), runtime=copy.deepcopy(running["runtime"]))
            pod["startedAt"] = running["startedAt"]
        pod["status"] = status
        return self._public(pod)

    def _list(self, request: httpx.Request) -> httpx.Response:
        if self.hidden_lists > 0:
            self.hidden_lists -= 1
            return httpx.Response(200, json={"pods": []})
        return httpx.Response(200, json={"pods": [self._public(p) for p in self.pods.values()]})

    def _get(self, request: httpx.Request, pod: str) -> httpx.Response:
        if pod not in self.pods:
            return _json(case("runpod", "v2_delete_pod", "already_gone")["response"])
        return httpx.Response(200, json=self._view(self.pods[pod]))

    def _delete(self, request: httpx.Request, pod: str) -> httpx.Response:
        if self.delete_outcomes:
            return _json(self.delete_outcomes.popleft())
        if self.pods.pop(pod, None) is None:
            return _json(case("runpod", "v2_delete_pod", "already_gone")["response"])
        return httpx.Response(204)

    def _action(self, request: httpx.Request, pod: str) -> httpx.Response:
        action = json.loads(request.content)["action"]
        if action == "stop":
            self.pods[pod]["status"] = "EXITED"
            self.pods[pod]["_boot"] = ["EXITED"]
            self.pods[pod]["cost"] = 0.0
            return httpx.Response(200, json=self._public(self.pods[pod]))
        return httpx.Response(204)

    def _put_keys(self, request: httpx.Request) -> httpx.Response:
        self.keys = json.loads(request.content)["keys"]
        return httpx.Response(200, json={"keys": self.keys})


class FakeVast(FakeCloud):
    spec = "vastai"
    base_url = "https://console.vast.ai/api/v0"
    key = VAST_KEY

    def __init__(self) -> None:
        super().__init__()
        self.offers = example("vastai", "search_offers")["response"]["json"]["offers"]
        self.gone: set[int] = set()
        self.instances: dict[int, dict[str, Any]] = {}
        self.boot = ["loading", "running"]
        r = self.router
        r.post(path__regex=r"/api/v0/bundles/$").mock(side_effect=self._search)
        r.put(path__regex=r"/api/v0/asks/(?P<offer>\d+)/$").mock(side_effect=self._create)
        r.get(path__regex=r"/api/v0/instances/(?P<inst>\d+)/$").mock(side_effect=self._get)
        r.delete(path__regex=r"/api/v0/instances/(?P<inst>\d+)/$").mock(side_effect=self._delete)
        r.put(path__regex=r"/api/v0/instances/(?P<inst>\d+)/$").mock(side_effect=self._state)
        r.get(path__regex=r"/api/v1/instances/$").mock(side_effect=self._list)
        r.get(path__regex=r"/api/v0/ssh/$").mock(return_value=_json(case("vastai", "ssh_keys", "list")["response"]))
        r.post(path__regex=r"/api/v0/ssh/$").mock(return_value=_json(case("vastai", "ssh_keys", "create")["response"]))
        r.get(path__regex=r"/api/v0/users/current$").mock(
            return_value=_json(example("vastai", "user_current")["response"])
        )

    def _search(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        offers = [o for o in self.offers if o["id"] not in self.gone]
        if "id" in body:
            offers = [o for o in offers if o["id"] == body["id"]["eq"]]
        return httpx.Response(200, json={"offers": offers})

    def _create(self, request: httpx.Request, offer: str) -> httpx.Response:
        if int(offer) in self.gone:
            return _json(case("vastai", "create_instance_errors", "offer_gone_410")["response"])
        outcome = self.create_outcomes.popleft() if self.create_outcomes else "ok"
        if isinstance(outcome, dict):
            return _json(outcome)
        body = json.loads(request.content)
        self.created += 1
        record = copy.deepcopy(example("vastai", "show_instance_running")["response"]["json"]["instances"])
        instance_id = 28765432 + self.created
        rented = next(o for o in self.offers if o["id"] == int(offer))
        record.update(id=instance_id, label=body["label"], actual_status=None, ports=None)
        record.update(gpu_name=rented["gpu_name"], num_gpus=rented["num_gpus"], dph_base=rented["dph_base"])
        record["dph_total"] = self.charge if self.charge is not None else rented["dph_total"]
        record["_boot"] = list(self.boot)
        self.instances[instance_id] = record
        answer = example("vastai", "create_instance")["response"]["json"]
        return httpx.Response(200, json={**answer, "new_contract": instance_id})

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        status = self._next_status(record)
        record["actual_status"] = status
        running = example("vastai", "show_instance_running")["response"]["json"]["instances"]
        record["ports"] = copy.deepcopy(running["ports"]) if status == "running" else None
        return {k: v for k, v in record.items() if not k.startswith("_")}

    def _get(self, request: httpx.Request, inst: str) -> httpx.Response:
        record = self.instances.get(int(inst))
        if record is not None and self.hidden_reads > 0:
            self.hidden_reads -= 1
            record = None
        return httpx.Response(200, json={"instances": self._view(record) if record else None})

    def _list(self, request: httpx.Request) -> httpx.Response:
        page = copy.deepcopy(example("vastai", "list_instances")["response"]["json"])
        page["instances"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in self.instances.values()]
        page.update(instances_found=len(page["instances"]), total_instances=len(page["instances"]), label_counts={})
        return httpx.Response(200, json=page)

    def _delete(self, request: httpx.Request, inst: str) -> httpx.Response:
        if self.delete_outcomes:
            return _json(self.delete_outcomes.popleft())
        if self.instances.pop(int(inst), None) is None:
            return _json(case("vastai", "stop_start_destroy", "destroy_missing")["response"])
        return _json(case("vastai", "stop_start_destroy", "destroy")["response"])

    def _state(self, request: httpx.Request, inst: str) -> httpx.Response:
        state = json.loads(request.content).get("state")
        if state == "stopped":
            self.instances[int(inst)].update(actual_status="stopped", intended_status="stopped", _boot=["stopped"])
        return _json(case("vastai", "stop_start_destroy", "stop")["response"])


class FakeLambda(FakeCloud):
    spec = "lambda"
    base_url = "https://cloud.lambda.ai/api/v1"
    key = LAMBDA_KEY

    def __init__(self) -> None:
        super().__init__()
        self.types = example("lambda", "list_instance_types")["response"]["json"]
        self.instances: dict[str, dict[str, Any]] = {}
        self.boot = ["booting", "active"]
        r = self.router
        r.get(path__regex=r"/api/v1/instance-types$").mock(side_effect=lambda req: httpx.Response(200, json=self.types))
        r.post(path__regex=r"/instance-operations/launch$").mock(side_effect=self._launch)
        r.get(path__regex=r"/api/v1/instances/(?P<inst>\w+)$").mock(side_effect=self._get)
        r.get(path__regex=r"/api/v1/instances$").mock(side_effect=self._list)
        r.post(path__regex=r"/instance-operations/terminate$").mock(side_effect=self._terminate)
        r.get(path__regex=r"/api/v1/ssh-keys$").mock(return_value=_json(case("lambda", "ssh_keys", "list")["response"]))
        r.post(path__regex=r"/api/v1/ssh-keys$").mock(side_effect=self._add_key)

    def _launch(self, request: httpx.Request) -> httpx.Response:
        outcome = self.create_outcomes.popleft() if self.create_outcomes else "ok"
        if isinstance(outcome, dict):
            return _json(outcome)
        body = json.loads(request.content)
        self.created += 1
        record = copy.deepcopy(example("lambda", "get_instance_active")["response"]["json"]["data"])
        instance_id = f"{self.created:032x}"
        kind = copy.deepcopy(self.types["data"][body["instance_type_name"]]["instance_type"])
        if self.charge is not None:
            kind["price_cents_per_hour"] = round(self.charge * 100)
        record.update(
            id=instance_id,
            name=body["name"],
            instance_type=kind,
            region={"name": body["region_name"], "description": ""},
        )
        record["_boot"] = list(self.boot)
        self.instances[instance_id] = record
        return _json({"status": 200, "json": {"data": {"instance_ids": [instance_id]}}})

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        record["status"] = self._next_status(record)
        view = {k: v for k, v in record.items() if not k.startswith("_")}
        if record["status"] != "active":
            for name in ("ip", "private_ip", "hostname", "jupyter_token", "jupyter_url"):
                view.pop(name, None)
        return view

    def _get(self, request: httpx.Request, inst: str) -> httpx.Response:
        if inst not in self.instances or self.hidden_reads > 0:
            self.hidden_reads = max(self.hidden_reads - 1, 0)
            return _json(example("lambda", "get_instance_not_found")["response"])
        return httpx.Response(200, json={"data": self._view(self.instances[inst])})

    def _list(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [self._view(r) for r in self.instances.values()]})

    def _terminate(self, request: httpx.Request) -> httpx.Response:
        if self.delete_outcomes:
            return _json(self.delete_outcomes.popleft())
        ids = json.loads(request.content)["instance_ids"]
        done = []
        for instance_id in ids:
            record = self.instances.pop(instance_id, None)
            if record is None:
                return _json({"status": 404, "json": example("lambda", "get_instance_not_found")["response"]["json"]})
            record["status"] = "terminating"
            done.append({k: v for k, v in record.items() if not k.startswith("_")})
        return httpx.Response(200, json={"data": {"terminated_instances": done}})

    def _add_key(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(
            200, json={"data": {"id": "k" * 32, "name": body["name"], "public_key": body["public_key"]}}
        )


@dataclass
class Probe:
    """A stand-in for the SSH login check: answers per host, records who was asked."""

    answer: bool = True
    asked: list[tuple[str, int, str]] = field(default_factory=list)

    async def __call__(self, host: str, port: int, user: str, identity: str) -> bool:
        self.asked.append((host, port, user))
        return self.answer


def make_service(
    store: GrimoireStore,
    clouds: list[FakeCloud],
    clock: FakeClock,
    *,
    probe: Probe | None = None,
    caps: GpuSettings | None = None,
    missing: list[str] | None = None,
) -> GpuService:
    providers: dict[str, Any] = {}
    for cloud in clouds:
        if isinstance(cloud, FakeRunPod):
            providers["runpod"] = RunPodProvider(cloud.client(), graphql_url="https://api.runpod.io/graphql")
        elif isinstance(cloud, FakeVast):
            providers["vast"] = VastProvider(cloud.client(), list_url="https://console.vast.ai/api/v1/instances/")
        elif isinstance(cloud, FakeLambda):
            providers["lambda"] = LambdaProvider(cloud.client())

    async def public_key() -> str:
        return PUBLIC_KEY

    return GpuService(
        caps or GpuSettings(),
        store,
        providers,
        clock=clock,
        public_key=public_key,
        probe=probe or Probe(),
        sleep=clock.sleep,
        missing_keys=missing or [],
    )


class FakeDeployer:
    """Stands in for the SSH deployer in MCP tests (the real one is tested against a loopback SSH server)."""

    def __init__(self) -> None:
        self.deployed: list[tuple[str, str, list[str]]] = []
        self.heartbeats = 0
        self.released: list[tuple[str, str]] = []  # (instance key, its status when released)

    async def deploy(self, rental: Any, plan: Any, progress: Any = None) -> Any:
        self.deployed.append((rental.key, plan.target, [step.name for step in plan.steps]))
        names = [step.name for step in plan.steps]
        return DeployResult(
            instance=rental.key, target=plan.target, ran=names, watchdog="Watchdog installed. " + plan.watchdog_note
        )

    async def heartbeat(self, live: set[str]) -> list[str]:
        self.heartbeats += 1
        return []

    async def release(self, rental: Any) -> list[str]:
        self.released.append((rental.key, rental.status.value))
        return []

    def instance_for(self, url: str) -> str | None:
        return None  # no ComfyUI is reached through a tunnel of this stand-in
