"""Training supervisor: runs one training command detached on the GPU host. STANDARD LIBRARY ONLY.

Copied to the host and started as ``python3 supervisor.py <spec.json>``. It runs the backend's command,
tees its output to ``<run_dir>/train.log``, keeps ``<run_dir>/status.json`` up to date (written atomically),
and on a CUDA out-of-memory error halves the batch size in the rendered config files (keeping the effective
batch through gradient accumulation) and tries again, at most ``max_halvings`` times; then it switches the
backend's memory savers on one at a time (the ``rungs``: their files are rendered by the server) and gives up
only when none is left. A job that goes silent after printing an OOM is killed after ``hang_seconds``. SIGTERM,
SIGINT or a ``stop`` file in the run folder stop the job. It needs nothing from the MCP server once started, so a
dropped SSH connection does not matter. The config edits live in ``supervisor_edits.py``, copied beside it.

The spec (JSON) holds: command (argv), workdir, env, run_dir, backend, batch_size, gradient_accumulation,
max_halvings, hang_seconds, edits (config files to change on a retry), rungs ([{id, label, why, overrides,
helps_loading, files}]) and start_rung, signatures ([{id, regex}]), oom_ids, progress_regex, loss_regex,
heartbeat_command (touches the instance watchdog's heartbeat), and edit_before_start (true when batch_size /
gradient_accumulation differ from the rendered files: a resume at the batch an earlier OOM ladder reached; the
same edits as a retry, and the rungs up to start_rung, are made before the first attempt).
"""

from __future__ import annotations

import codecs
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

try:  # beside this script on the host (the runner copies both)
    from supervisor_edits import apply_edits, next_rung, write_text_atomic  # pyright: ignore[reportMissingImports]
except ImportError:  # imported from the package (tests)
    from ategnatos_mcp.training.execution.supervisor_edits import apply_edits, next_rung, write_text_atomic

STATUS_FILE = "status.json"
LOG_FILE = "train.log"
STOP_FILE = "stop"

_EPOCH = re.compile(r"^(?:epoch (\d+)/(\d+)$|Epoch (\d+)/(\d+),? Steps:)")
_CHECKPOINT = re.compile(
    r"^(?:saving checkpoint: (?P<kohya>\S+)|Saved checkpoint to (?P<aitk>\S+)"
    r"|.*\[INFO\] Saving checkpoint to (?P<st>\S+))\s*$"
)
_COMPLETE = re.compile(r"^(?:.*INFO\s+model saved\.|model saved\.|.*Training has completed\.| - 1 completed job)")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_json_atomic(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# The supervisor ---------------------------------------------------------------------------------------


class Supervisor:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.run_dir = spec["run_dir"]
        self.log_path = os.path.join(self.run_dir, LOG_FILE)
        self.status_path = os.path.join(self.run_dir, STATUS_FILE)
        self.signatures = [(s["id"], re.compile(s["regex"])) for s in spec.get("signatures", [])]
        self.oom_ids = set(spec.get("oom_ids", []))
        self.progress = re.compile(spec["progress_regex"]) if spec.get("progress_regex") else None
        self.loss = re.compile(spec["loss_regex"]) if spec.get("loss_regex") else None
        self.hang_seconds = float(spec.get("hang_seconds", 600))
        self.stop_requested = False
        self.last_beat = -1e9
        self.child: subprocess.Popen | None = None
        self.status = {
            "state": "starting",
            "backend": spec.get("backend"),
            "attempt": 0,
            "batch_size": int(spec.get("batch_size", 1)),
            "gradient_accumulation": int(spec.get("gradient_accumulation", 1)),
            "step": 0,
            "total_steps": None,
            "epoch": None,
            "total_epochs": None,
            "loss": None,
            "last_checkpoint": None,
            "checkpoints": [],
            "pid": os.getpid(),
            "child_pid": None,
            "exit_code": None,
            "error_signature": None,
            "message": "",
            "attempts": [],
            "started_at": _now(),
            "updated_at": _now(),
            "last_output_at": None,  # host clock, like updated_at: how long the log has been still is their difference
            "last_step_at": None,
            "rung": 0,  # memory-saver rungs switched on (spec "rungs", in order)
            "savers": [],
            "saver_overrides": {},
            "memory_exhausted": False,
        }

    # bookkeeping
    def save(self) -> None:
        self.status["updated_at"] = _now()
        write_json_atomic(self.status_path, self.status)

    def request_stop(self, *_args: object) -> None:
        self.stop_requested = True

    def _heartbeat(self, now: float) -> None:
        """Tell the instance's idle watchdog the machine is busy (CPU phases too), at most once a minute."""
        command = self.spec.get("heartbeat_command")
        if not command or now - self.last_beat < 60:
            return
        self.last_beat = now
        try:
            subprocess.run(
                ["/bin/sh", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            pass  # the watchdog still sees GPU work; a missed beat is not worth stopping training for

    # one attempt
    def _start_child(self) -> queue.Queue:
        env = dict(os.environ)
        env.update(self.spec.get("env") or {})
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.child = subprocess.Popen(
            self.spec["command"],
            cwd=self.spec.get("workdir") or None,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a hang kill takes accelerate's children too
        )
        lines: queue.Queue = queue.Queue()

        def pump() -> None:
            assert self.child is not None and self.child.stdout is not None
            fd = self.child.stdout.fileno()
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                lines.put(chunk)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        return lines

    def _kill_child(self, grace: float = 5.0) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(child.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            try:
                child.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def _line(self, line: str, seen: dict) -> None:
        line = line.strip("\n")
        if not line.strip():
            return
        match = self.progress.search(line) if self.progress else None
        if match:
            seen["progress"] = True
            step = int(match.group("step"))
            if step != self.status["step"] or self.status["last_step_at"] is None:
                self.status["last_step_at"] = _now()
            self.status["step"] = step
            self.status["total_steps"] = int(match.group("total"))
            if "epoch" in match.groupdict() and match.group("epoch"):
                self.status["epoch"] = int(match.group("epoch"))
                self.status["total_epochs"] = int(match.group("epochs"))
            loss = self.loss.search(line) if self.loss else None
            if loss:
                self.status["loss"] = loss.group("loss")
        epoch = _EPOCH.match(line.strip())
        if epoch and not match:
            self.status["epoch"] = int(epoch.group(1) or epoch.group(3))
            self.status["total_epochs"] = int(epoch.group(2) or epoch.group(4))
        checkpoint = _CHECKPOINT.match(line.strip())
        if checkpoint:
            path = checkpoint.group("kohya") or checkpoint.group("aitk") or checkpoint.group("st")
            self.status["last_checkpoint"] = path
            self.status["checkpoints"].append(
                {"file": path, "step": self.status["step"], "epoch": self.status["epoch"]}
            )
            seen["dirty"] = True
        if _COMPLETE.match(line):
            seen["complete"] = True
        rest = line[match.end() :] if match else line  # progress frames are most lines: scan only what follows
        for sig_id, regex in self.signatures if rest.strip() else ():
            if regex.search(rest):
                seen.setdefault("signatures", []).append(sig_id)
                if sig_id in self.oom_ids and "oom_at" not in seen:
                    seen["oom_at"] = time.monotonic()
                    seen["oom_before_progress"] = not seen.get("progress")
                    seen["dirty"] = True
                break

    def _attempt(self, log) -> dict:
        lines = self._start_child()
        assert self.child is not None
        self.status.update(state="running", child_pid=self.child.pid, exit_code=None)
        self.save()
        seen: dict = {}
        buffer = ""
        last_output = time.monotonic()
        last_save = 0.0
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a chunk may end inside a character
        while True:
            try:
                chunk = lines.get(timeout=0.2)
            except queue.Empty:
                chunk = b""
            if chunk is None:
                break
            now = time.monotonic()
            if chunk:
                last_output = now
                self.status["last_output_at"] = _now()
                log.write(chunk)
                log.flush()
                self._heartbeat(now)
                buffer += decoder.decode(chunk)
                parts = re.split(r"[\r\n]", buffer)
                buffer = parts.pop()
                for part in parts:
                    self._line(part, seen)
            if self.stop_requested or os.path.exists(os.path.join(self.run_dir, STOP_FILE)):
                self.stop_requested = True
                self._kill_child()
            elif "oom_at" in seen and now - last_output > self.hang_seconds:
                seen["hung"] = True
                self._kill_child(grace=2.0)
            if seen.pop("dirty", False) or now - last_save > 1.0:
                last_save = now
                self.save()
        if buffer:
            self._line(buffer, seen)
        seen["exit_code"] = self.child.wait()
        return seen

    def _signature(self, seen: dict) -> str | None:
        found = seen.get("signatures", [])
        ooms = [s for s in found if s in self.oom_ids]
        if ooms:
            return ooms[0]
        real = [s for s in found if s not in ("accelerate_wrapper", "aitk_oom_skip", "st_bucket_removed")]
        return real[-1] if real else None

    def _write_rungs(self, upto: int) -> None:
        """Switch on the memory savers of rungs [current, upto): write their files, then the batch again."""
        rungs = self.spec.get("rungs", [])
        for rung in rungs[self.status["rung"] : upto]:
            for path, text in rung["files"].items():
                write_text_atomic(path, text)
        if upto:
            self.status.update(
                rung=upto, savers=[r["label"] for r in rungs[:upto]], saver_overrides=rungs[upto - 1]["overrides"]
            )
        apply_edits(self.spec.get("edits", []), self.status["batch_size"], self.status["gradient_accumulation"])

    def _next_try(self, seen: dict, halvings: int) -> str | None:
        """After an out-of-memory attempt: set up the next rung and say so (None: nothing is left to try).

        A smaller batch first (while halvings are left), then the trainer's memory savers one at a time. An OOM
        while loading the model skips to the first saver that lowers what loading needs.
        """
        batch, accumulation = self.status["batch_size"], self.status["gradient_accumulation"]
        rungs, at = self.spec.get("rungs", []), self.status["rung"]
        hung = " (it hung after the error and was stopped)" if seen.get("hung") else ""
        if seen.get("oom_before_progress"):
            target = next((i for i in range(at, len(rungs)) if rungs[i].get("helps_loading")), None)
            if target is None:
                return None
            also = [r["label"] for r in rungs[at:target]]
            self._write_rungs(target + 1)
            with_too = f" ({', '.join(also)} switched on with it)" if also else ""
            return (
                f"Ran out of graphics memory while loading the model{hung}; now trying with "
                f"{rungs[target]['label']}{with_too}, {rungs[target]['why']}."
            )
        if halvings < int(self.spec.get("max_halvings", 3)) and batch > 1:
            batch, accumulation = next_rung(batch, accumulation)
            self.status.update(batch_size=batch, gradient_accumulation=accumulation)
            apply_edits(self.spec.get("edits", []), batch, accumulation)
            return (
                f"Out of graphics memory{hung}; retrying with batch size {batch} and gradient accumulation "
                f"{accumulation} (same effective batch)."
            )
        if at >= len(rungs):
            return None
        self._write_rungs(at + 1)
        return (
            f"Ran out of graphics memory at batch size {batch}{hung}; now trying with {rungs[at]['label']}, "
            f"{rungs[at]['why']}."
        )

    def _give_up(self, seen: dict) -> str:
        batch, savers = self.status["batch_size"], self.status["savers"]
        self.status["memory_exhausted"] = True
        if seen.get("oom_before_progress"):
            head = (
                "Out of graphics memory while loading the model, before the first step: a smaller batch will not help"
            )
        else:
            head = f"Out of graphics memory even at batch size {batch}"
        if savers:
            return f"{head}, with every memory saver this trainer offers switched on ({', '.join(savers)})."
        return f"{head}, and this trainer has no memory saver left to switch on."

    def run(self) -> int:
        os.makedirs(self.run_dir, exist_ok=True)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        halvings = 0
        start_rung = int(self.spec.get("start_rung", 0))
        if start_rung or self.spec.get("edit_before_start"):
            self._write_rungs(start_rung)  # a resume at the rung and batch an earlier run's ladder reached
        self.save()
        with open(self.log_path, "ab") as log:
            while True:
                self.status["attempt"] += 1
                seen = self._attempt(log)
                code = seen["exit_code"]
                signature = self._signature(seen)
                self.status["attempts"].append(
                    {
                        "attempt": self.status["attempt"],
                        "batch_size": self.status["batch_size"],
                        "gradient_accumulation": self.status["gradient_accumulation"],
                        "savers": list(self.status["savers"]),
                        "exit_code": code,
                        "error_signature": signature,
                        "hung": bool(seen.get("hung")),
                    }
                )
                self.status.update(exit_code=code, error_signature=signature)
                if self.stop_requested:
                    self.status.update(state="stopped", message="Stopped on request.")
                    break
                if code == 0 and not seen.get("hung"):
                    self.status.update(state="succeeded", message="Training finished.")
                    break
                if signature not in self.oom_ids:
                    self.status.update(state="failed", message=f"The trainer stopped with exit status {code}.")
                    break
                before = self.status["batch_size"]
                message = self._next_try(seen, halvings)
                if message is None:
                    self.status.update(state="failed", message=self._give_up(seen))
                    break
                halvings += self.status["batch_size"] != before
                self.status.update(state="retrying", step=0, message=message)
                self.save()
        self.status["child_pid"] = None
        self.save()
        return 0 if self.status["state"] == "succeeded" else 1


def main(argv: list) -> int:
    if len(argv) != 2:
        print("usage: supervisor.py SPEC.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    supervisor = Supervisor(spec)
    try:
        return supervisor.run()
    finally:
        # Whatever happened to us (disk full, run folder deleted), never leave the trainer running unwatched.
        supervisor._kill_child(grace=5.0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
