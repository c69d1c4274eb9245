"""The idle/heartbeat watchdog that runs ON the rented instance (POSIX sh, no dependencies).

The server touches the heartbeat file whenever it talks to the instance. The watchdog stops the machine when
neither a heartbeat nor GPU work has been seen for ``idle_minutes``, or when the rental's time limit is reached,
so a forgotten instance cannot bill for days. Nothing here holds an API key: stopping is done from inside.
"""

from __future__ import annotations

import shlex
from string import Template

from ategnatos_mcp.providers.models import ProviderName

__all__ = ["HEARTBEAT_COMMAND", "WATCHDOG_DIR", "install_command", "render_watchdog", "stop_command_for"]

WATCHDOG_DIR = "$HOME/.ategnatos/watchdog"
HEARTBEAT_COMMAND = f'mkdir -p "{WATCHDOG_DIR}" && touch "{WATCHDOG_DIR}/heartbeat"'

VAST_API_URL = "https://console.vast.ai/api/v0"

# Containers (RunPod, Vast) are stopped through the provider's own API from inside, with the credentials the
# provider puts into every container for exactly that (RunPod: runpodctl + RUNPOD_POD_ID and its pod-scoped key;
# Vast: CONTAINER_API_KEY, which can only start/stop/destroy its own instance). If that is unavailable or did not
# take effect within the grace period, PID 1 is ended as the last resort (a container whose main process exits
# stops, unless the provider restarts it; the server's hour cap backs this up). Lambda VMs can only be shut down,
# and Lambda keeps billing a shut-down VM until it is terminated, so there the server's reconcile finishes the job.
_RUNPOD_STOP = """pod=$$(cenv RUNPOD_POD_ID)
if [ -n "$$pod" ] && command -v runpodctl >/dev/null 2>&1; then
    RUNPOD_API_KEY="$$(cenv RUNPOD_API_KEY)" runpodctl stop pod "$$pod" >> "$$DIR/watchdog.log" 2>&1 && log "asked RunPod to stop pod $$pod"
fi
sleep "$$STOP_GRACE"; log "still running: ending PID 1"; kill -TERM 1"""

_VAST_STOP = """id=$instance_id; [ -n "$$id" ] || id=$$(cenv CONTAINER_ID)
key=$$(cenv CONTAINER_API_KEY); url=$api_url"/instances/$$id/"
if [ -n "$$id" ] && [ -n "$$key" ]; then
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -m 30 -X PUT -H "Authorization: Bearer $$key" -H "Content-Type: application/json" -d '{"state":"stopped"}' "$$url" >> "$$DIR/watchdog.log" 2>&1
    else
        KEY="$$key" python3 -c 'import os, sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], data=b"{\\"state\\":\\"stopped\\"}", method="PUT", headers={"Authorization": "Bearer " + os.environ["KEY"], "Content-Type": "application/json"}), timeout=30)' "$$url" >> "$$DIR/watchdog.log" 2>&1
    fi && log "asked Vast.ai to stop instance $$id"
fi
sleep "$$STOP_GRACE"; log "still running: ending PID 1"; kill -TERM 1"""

_STOP: dict[ProviderName, str] = {"lambda": "sudo shutdown -h now", "local": "true"}


_SCRIPT = Template(r"""#!/bin/sh
# Ategnatos watchdog: stops this machine when idle or past its time limit. Log: $$DIR/watchdog.log
DIR="$${ATEGNATOS_WATCHDOG_DIR:-$$HOME/.ategnatos/watchdog}"
IDLE_SECONDS=$idle_seconds
DEADLINE_EPOCH=$deadline_epoch
INTERVAL=$${ATEGNATOS_WATCHDOG_INTERVAL:-60}
STOP_GRACE=$${ATEGNATOS_WATCHDOG_STOP_GRACE:-90}
mkdir -p "$$DIR"
[ -f "$$DIR/heartbeat" ] || touch "$$DIR/heartbeat"
log() { echo "$$(date -u +%Y-%m-%dT%H:%M:%SZ) $$*" >> "$$DIR/watchdog.log"; }
# A variable from this shell, else from the container's own environment (an SSH login may not carry it).
cenv() {
  eval "v=\$${$$1:-}"
  [ -n "$$v" ] || v=$$(tr '\000' '\n' < /proc/1/environ 2>/dev/null | sed -n "s/^$$1=//p" | head -n 1)
  printf %s "$$v"
}
gpu_busy() {
  command -v nvidia-smi >/dev/null 2>&1 || return 1
  util=$$(nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits 2>/dev/null | sort -n | tail -1)
  [ -n "$$util" ] && [ "$$util" -ge 10 ]
}
stop_now() {
  log "stopping: $$1"
  echo "$$1" > "$$DIR/stopped"
  $stop_command
}
check() {
  now=$$(date +%s)
  if [ "$$DEADLINE_EPOCH" -gt 0 ] && [ "$$now" -ge "$$DEADLINE_EPOCH" ]; then
    stop_now "time limit reached"; return 1
  fi
  if gpu_busy; then touch "$$DIR/heartbeat"; fi
  beat=$$(date -r "$$DIR/heartbeat" +%s 2>/dev/null || echo "$$now")
  idle=$$((now - beat))
  if [ "$$IDLE_SECONDS" -gt 0 ] && [ "$$idle" -ge "$$IDLE_SECONDS" ]; then
    stop_now "idle for $$idle seconds"; return 1
  fi
  if [ "$$IDLE_SECONDS" -gt 0 ] && [ "$$idle" -ge $$((IDLE_SECONDS / 2)) ]; then
    log "warning: idle for $$idle seconds; stopping at $$IDLE_SECONDS"
  fi
  return 0
}
if [ "$${1:-}" = "--once" ]; then check; exit $$?; fi
log "started (idle limit $${IDLE_SECONDS}s, deadline $$DEADLINE_EPOCH)"
while check; do sleep "$$INTERVAL"; done
""")


def stop_command_for(provider: ProviderName, instance_id: str = "", *, vast_api_url: str = VAST_API_URL) -> str:
    """The shell commands that stop billing from inside an instance of this provider (run by the watchdog)."""
    if provider == "runpod":
        return Template(_RUNPOD_STOP).substitute()
    if provider == "vast":
        return Template(_VAST_STOP).substitute(
            instance_id=shlex.quote(instance_id) if instance_id else '""', api_url=shlex.quote(vast_api_url.rstrip("/"))
        )
    return _STOP[provider]


def render_watchdog(*, idle_minutes: int, deadline_epoch: int, stop_command: str) -> str:
    """The watchdog script. ``idle_minutes`` 0 = only warn on idleness; ``deadline_epoch`` 0 = no time limit."""
    if idle_minutes < 0 or deadline_epoch < 0:
        raise ValueError("idle_minutes and deadline_epoch must not be negative")
    return _SCRIPT.substitute(
        idle_seconds=int(idle_minutes) * 60, deadline_epoch=int(deadline_epoch), stop_command=stop_command
    )


def install_command(script: str) -> str:
    """One shell command that writes the script and starts it detached (survives the SSH session)."""
    return (
        f'mkdir -p "{WATCHDOG_DIR}" && printf %s {shlex.quote(script)} > "{WATCHDOG_DIR}/watchdog.sh" && '
        f'chmod 700 "{WATCHDOG_DIR}/watchdog.sh" && touch "{WATCHDOG_DIR}/heartbeat" && '
        f'(if [ -f "{WATCHDOG_DIR}/watchdog.pid" ]; then kill "$(cat "{WATCHDOG_DIR}/watchdog.pid")" 2>/dev/null; fi; '
        f'setsid nohup sh "{WATCHDOG_DIR}/watchdog.sh" > /dev/null 2>&1 < /dev/null & '
        f'echo $! > "{WATCHDOG_DIR}/watchdog.pid")'
    )
