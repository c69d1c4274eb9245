"""Installing a training backend on a rented instance: the exact commit our option catalogues were read from, and
the PyTorch build the CUDA matrix picks for the instance's driver and GPU.

A backend at another commit may not accept the options Ategnatos writes (they are checked against the catalogue
of one commit), and a PyTorch built for a newer CUDA than the driver runs fails part-way through a paid run: both
are pinned here, before any training. Everything goes into the instance's system ``python3``, the one gate 3 and
the launch use (rented images are disposable single-user machines; ``PIP_BREAK_SYSTEM_PACKAGES`` lets pip do that
on images whose Python is marked as managed by the OS).
"""

from __future__ import annotations

import shlex
from typing import Literal

from pydantic import BaseModel, Field

from ategnatos_mcp.cuda_matrix import TorchChoice, cuda_matrix
from ategnatos_mcp.errors import InvalidRequestError
from ategnatos_mcp.remote import SSHSession, Step

__all__ = [
    "TRAINERS",
    "GpuFacts",
    "TrainerRecipe",
    "TrainerSetup",
    "TrainerVersion",
    "choose_pytorch",
    "read_gpu",
    "trainer_steps",
]

TrainerName = Literal["kohya", "simpletuner", "ai-toolkit"]
CONSTRAINTS = "$HOME/.ategnatos/torch-constraints.txt"


class TrainerRecipe(BaseModel):
    """How a backend is installed: where from, into which folder, and which PyTorch releases it was tested with."""

    name: TrainerName
    label: str
    repo: str
    folder: str = Field(description="Checkout folder, relative to the login home (where gate 3 looks by default).")
    install: Literal["requirements", "editable"]
    torch_prefer: list[str] = Field(default_factory=list, description="Releases the backend says it was tested with.")


TRAINERS: dict[str, TrainerRecipe] = {
    # sd-scripts' README tests torch 2.6.0; RTX 50xx cards need 2.8 (shared/training/README.md, "Launching").
    "kohya": TrainerRecipe(
        name="kohya",
        label="kohya sd-scripts",
        repo="https://github.com/kohya-ss/sd-scripts.git",
        folder="~/sd-scripts",
        install="requirements",
        torch_prefer=["2.6.0", "2.8.0"],
    ),
    "simpletuner": TrainerRecipe(
        name="simpletuner",
        label="SimpleTuner",
        repo="https://github.com/bghira/SimpleTuner.git",
        folder="~/SimpleTuner",
        install="editable",
    ),
    "ai-toolkit": TrainerRecipe(
        name="ai-toolkit",
        label="ai-toolkit",
        repo="https://github.com/ostris/ai-toolkit.git",
        folder="~/ai-toolkit",
        install="requirements",
    ),
}


class TrainerVersion(BaseModel):
    """The commit a backend's option catalogue was read from (``training/data/*-options.json``, its header)."""

    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    date: str = ""
    note: str = Field(default="", description="E.g. the package version at that commit.")
    repo: str | None = Field(default=None, description="A mirror holding that commit (default: the backend's own).")


class TrainerSetup(BaseModel):
    """A backend to install at one version (``repo`` may point at a mirror)."""

    recipe: TrainerRecipe
    version: TrainerVersion
    python: str = "python3"

    def describe(self) -> str:
        when = f" of {self.version.date[:10]}" if self.version.date else ""
        note = f", {self.version.note}" if self.version.note else ""
        return (
            f"{self.recipe.label} at commit {self.version.commit[:10]}{when}{note} (the version Ategnatos' option "
            f"catalogue was read from), in {self.recipe.folder}"
        )


class GpuFacts(BaseModel):
    """What the instance's nvidia-smi says about GPU 0."""

    name: str
    driver: str
    compute_cap: str | None = None


async def read_gpu(session: SSHSession, where: str) -> GpuFacts:
    """GPU 0's name, driver and compute capability on the host.

    Raises:
        InvalidRequestError: no NVIDIA GPU answers there (nothing can be chosen for it).
    """
    done = await session.run(
        "nvidia-smi --query-gpu=name,driver_version --format=csv,noheader", timeout=60, check=False
    )
    first = next((line for line in done.stdout.splitlines() if line.strip()), "")
    parts = [part.strip() for part in first.split(",")]
    if done.exit_status != 0 or len(parts) < 2:
        said = (done.stderr or done.stdout).strip()[-200:] or f"exit status {done.exit_status}"
        raise InvalidRequestError(
            f"No NVIDIA GPU answered on {where} (nvidia-smi: {said}), so no PyTorch build can be chosen for it. "
            "Nothing was installed besides the watchdog.",
            hint="Check the instance in gpu_instances (it may still be starting); if it has no GPU, rent another.",
        )
    # Its own query: drivers older than the 510 series do not know the field and fail the whole query.
    cap = await session.run("nvidia-smi --query-gpu=compute_cap --format=csv,noheader", timeout=60, check=False)
    caps = [line.strip() for line in cap.stdout.splitlines() if line.strip()] if cap.exit_status == 0 else []
    return GpuFacts(name=parts[0], driver=parts[1], compute_cap=caps[0] if caps else None)


def choose_pytorch(gpu: GpuFacts, recipe: TrainerRecipe, where: str) -> TorchChoice:
    """The build for this GPU and driver, the backend's tested releases first.

    Raises:
        InvalidRequestError: the driver is too old, or the GPU needs a CUDA the driver cannot run.
    """
    try:
        return cuda_matrix().choose_torch(
            gpu.driver, gpu_name=gpu.name, compute_cap=gpu.compute_cap, prefer=recipe.torch_prefer
        )
    except ValueError as exc:
        raise InvalidRequestError(
            f"{where} ({gpu.name}): {exc} Nothing was installed besides the watchdog.",
            hint="Rent an instance with a newer NVIDIA driver (gpu_offers), then deploy there.",
        ) from exc


def trainer_steps(setup: TrainerSetup, choice: TorchChoice) -> list[Step]:
    """Checkout at the pinned commit, PyTorch for the driver, then the backend's packages with PyTorch held fixed."""
    recipe, commit, py = setup.recipe, setup.version.commit, setup.python
    folder = recipe.folder
    pip = f"PIP_BREAK_SYSTEM_PACKAGES=1 {py} -m pip install -q --disable-pip-version-check"
    pins = f"torch=={choice.torch}\ntorchvision=={choice.torchvision}\ntorchaudio=={choice.torchaudio}\n"
    matches = (
        f"import sys, torch; sys.exit(0 if torch.__version__.split('+')[0] == {choice.torch!r} "
        f"and (torch.version.cuda or '') == {choice.cuda!r} else 1)"
    )
    if recipe.install == "editable":
        extra = "cuda13" if choice.cuda.startswith("13.") else "cuda"
        packages = f"-e {shlex.quote(f'.[{extra}]')}"
    else:
        packages = "-r requirements.txt"
    return [
        Step(
            name=f"{recipe.name}-clone",
            description=f"download {recipe.label} at commit {commit[:10]}",
            # fetch by commit works on GitHub and local mirrors alike; git init keeps an existing checkout's history
            command=(
                f"git init -q {folder} && git -C {folder} fetch -q --depth 1 {shlex.quote(setup.recipe.repo)} "
                f"{commit} && git -C {folder} checkout -q --detach FETCH_HEAD"
            ),
            check=f'test "$(git -C {folder} rev-parse HEAD 2>/dev/null)" = {commit}',
        ),
        Step(
            name="pytorch",
            description=f"install PyTorch {choice.label} ({choice.reason})",
            command=f"{pip} {shlex.join(choice.pip_args)}",
            check=f"{py} -c {shlex.quote(matches)}",
            timeout_seconds=3600,
        ),
        Step(
            name=f"{recipe.name}-install",
            description=f"install {recipe.label}'s Python packages (PyTorch kept at {choice.label})",
            command=(
                f'cd {folder} && test "$(git rev-parse HEAD)" = {commit} && mkdir -p "$HOME/.ategnatos" && '
                f'printf %s {shlex.quote(pins)} > "{CONSTRAINTS}" && {pip} -c "{CONSTRAINTS}" {packages}'
            ),
            timeout_seconds=3600,
        ),
    ]
