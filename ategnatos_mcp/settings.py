"""The one settings model: ``ategnatos.toml`` in the project root, overridden by the environment.

Public environment names (fixed): ``ATEGNATOS_HOME``, ``ATEGNATOS_COMFYUI_URL`` (one URL or a
comma-separated list), ``RUNPOD_API_KEY``, ``VAST_API_KEY``, ``LAMBDA_API_KEY``,
``ATEGNATOS_RUNPOD_API_URL``, ``ATEGNATOS_VAST_API_URL``, ``ATEGNATOS_LAMBDA_API_URL``.
Any other setting can be set as ``ATEGNATOS_<SECTION>__<KEY>`` (e.g. ``ATEGNATOS_GPU__MAX_USD_PER_HOUR``).
API keys are read from the environment only, never from the file, and never written anywhere.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from ategnatos_mcp.errors import ConfigError

__all__ = [
    "ComfyUISettings",
    "DatasetSettings",
    "GpuSettings",
    "Settings",
    "TrainingSettings",
    "load_settings",
]

CONFIG_FILE_NAME = "ategnatos.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComfyUISettings(_Section):
    """Where ComfyUI runs and how long we wait for it."""

    urls: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8188"])
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    upload_timeout_seconds: float = Field(default=120.0, gt=0)
    max_wait_seconds: float = Field(
        default=50.0, gt=0, description="Longest a tool call waits before handing back a job handle."
    )
    preview_max_side: int = Field(default=768, ge=64)
    preview_budget_bytes: int = Field(
        default=1_000_000, ge=50_000, description="All inline previews of one answer together."
    )
    down_retry_seconds: float = Field(default=30.0, gt=0)
    job_check_seconds: float = Field(
        default=30.0, gt=0, description="How often a quiet job is checked against the server's queue and history."
    )
    ws_open_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Longest wait for ComfyUI's websocket to open before following the job by polling instead.",
    )
    status_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest comfyui_status waits for one server to describe itself."
    )
    # Caps on what one answer may weigh (a wrong address can send anything). A stock /object_info is ~0.5 MB.
    max_answer_bytes: int = Field(default=16_000_000, ge=1024, description="Queue, history, model lists...")
    max_object_info_bytes: int = Field(default=64_000_000, ge=1024, description="The node catalogue.")
    max_download_bytes: int = Field(default=256_000_000, ge=1024, description="One output file or live picture.")
    models_dir: Path | None = Field(
        default=None,
        description="The models folder of the ComfyUI on this machine (e.g. ~/ComfyUI/models): train_evaluate puts "
        "LoRA files into its loras/ folder. Default: ~/ComfyUI/models when that exists.",
    )

    @field_validator("urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class GpuSettings(_Section):
    """Budget caps and timers that protect the user from surprise bills. Caps are enforced."""

    max_usd_per_hour: float = Field(default=3.0, gt=0)
    max_hours_per_instance: float = Field(default=12.0, gt=0)
    monthly_usd_cap: float = Field(default=200.0, gt=0)
    quote_ttl_seconds: int = Field(default=600, gt=0)
    boot_timeout_seconds: int = Field(default=900, gt=0)
    idle_stop_minutes: int = Field(
        default=60, ge=0, description="0 turns the idle watchdog's stop off (it still warns)."
    )
    ssh_key_dir: Path | None = Field(
        default=None, description="Where the SSH key lives; default ~/.config/ategnatos/ssh."
    )
    provider_answer_seconds: float = Field(
        default=60.0, gt=0, le=600, description="Longest a GPU cloud may take to answer one call, start to end."
    )
    provider_answer_max_mb: float = Field(
        default=8.0, gt=0, le=256, description="Largest answer read from a GPU cloud; a bigger one is an error."
    )
    teardown_seconds: float = Field(
        default=60.0,
        gt=0,
        le=900,
        description="Longest gpu_teardown keeps trying one provider; what it could not confirm is reported.",
    )


class DatasetSettings(_Section):
    """Dataset preparation defaults."""

    workers: int = Field(default=0, ge=0, description="Processes for decoding and hashing; 0 = one per core.")
    near_duplicate_threshold: int = Field(default=10, ge=0, le=64)
    max_wait_seconds: float = Field(
        default=50.0, gt=0, description="Longest a dataset tool waits; reading goes on in the background after."
    )


class TrainingSettings(_Section):
    """Training defaults."""

    default_backend: Literal["kohya", "simpletuner", "ai-toolkit"] = "kohya"
    stall_minutes: float = Field(
        default=15, gt=0, le=24 * 60, description="training_status warns when a running log has not moved this long."
    )


class Settings(BaseSettings):
    """Everything configurable. Build it with ``load_settings``; pass it down, never import a global."""

    model_config = SettingsConfigDict(
        env_prefix="ATEGNATOS_",
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
    )

    home: Path = Field(default_factory=Path.cwd, description="The project root: grimoire/, workspace/ live here.")
    extra_roots: list[Path] = Field(default_factory=list, description="Other folders tools may read (e.g. your art).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http_token: SecretStr | None = Field(default=None, description="Bearer token for `serve --http`.")
    nvidia_smi: str = Field(default="nvidia-smi", description="The nvidia-smi command used to detect GPUs.")

    comfyui: ComfyUISettings = Field(default_factory=ComfyUISettings)
    gpu: GpuSettings = Field(default_factory=GpuSettings)
    dataset: DatasetSettings = Field(default_factory=DatasetSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)

    runpod_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("RUNPOD_API_KEY"))
    vast_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("VAST_API_KEY"))
    lambda_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("LAMBDA_API_KEY"))
    runpod_api_url: str = "https://api.runpod.io/v2"
    runpod_graphql_url: str = "https://api.runpod.io/graphql"
    vast_api_url: str = "https://console.vast.ai/api/v0"
    lambda_api_url: str = "https://cloud.lambda.ai/api/v1"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings merges the file and the chosen environment variables itself (env wins over the file).
        return (init_settings,)

    # Derived locations -------------------------------------------------------------------------
    @property
    def grimoire_dir(self) -> Path:
        return self.home / "grimoire"

    @property
    def state_dir(self) -> Path:
        return self.grimoire_dir / ".state"

    @property
    def workspace_dir(self) -> Path:
        return self.home / "workspace"

    @property
    def outputs_dir(self) -> Path:
        return self.workspace_dir / "outputs"

    @property
    def datasets_dir(self) -> Path:
        return self.workspace_dir / "datasets"

    @property
    def configs_dir(self) -> Path:
        return self.workspace_dir / "configs"

    @property
    def exports_dir(self) -> Path:
        return self.workspace_dir / "exports"

    @property
    def cache_dir(self) -> Path:
        return self.workspace_dir / ".cache"

    @property
    def roots(self) -> list[Path]:
        """Folders a tool may read or write, resolved."""
        return [p.resolve() for p in (self.grimoire_dir, self.workspace_dir, *self.extra_roots)]

    def provider_keys_present(self) -> dict[str, bool]:
        """Which provider keys are set. Never the values."""
        return {
            "runpod": self.runpod_api_key is not None,
            "vast": self.vast_api_key is not None,
            "lambda": self.lambda_api_key is not None,
        }


_SECRET_FILE_KEYS = {"runpod_api_key", "vast_api_key", "lambda_api_key", "http_token"}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}.",
            key="",
            hint="Fix the line it names (strings need quotes, sections look like [gpu]) or move the file away.",
        ) from exc
    for key in _SECRET_FILE_KEYS & data.keys():
        raise ConfigError(
            f"{path} sets `{key}`, but secrets are read from the environment only.",
            key=key,
            hint=f"Remove `{key}` from the file and set {key.upper()} in your environment instead.",
        )
    return data


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """Map the public environment names that don't follow the nested pattern."""
    extra: dict[str, Any] = {}
    if env.get("ATEGNATOS_COMFYUI_URL"):
        extra["comfyui"] = {"urls": env["ATEGNATOS_COMFYUI_URL"]}
    return extra


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)  # pyright: ignore[reportUnknownArgumentType]
        else:
            merged[key] = value
    return merged


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from the file in the project root, the environment and explicit overrides.

    Raises:
        ConfigError: the file or a variable has a value we cannot use; the message names the key.
    """
    env = os.environ if env is None else env
    home = Path(overrides.get("home") or env.get("ATEGNATOS_HOME") or Path.cwd()).expanduser().resolve()
    config_path = home / CONFIG_FILE_NAME
    data: dict[str, Any] = _read_file(config_path) if config_path.is_file() else {}
    data = _deep_merge(data, _env_overrides(env))
    data = _deep_merge(data, overrides)
    data["home"] = home
    # Only the ATEGNATOS_* variables (plus the three keys) feed the env source, never the whole environment.
    relevant = {k: v for k, v in env.items() if k.startswith("ATEGNATOS_") and k != "ATEGNATOS_COMFYUI_URL"}
    for name in ("RUNPOD_API_KEY", "VAST_API_KEY", "LAMBDA_API_KEY"):
        if env.get(name):
            data[name] = env[name]
    relevant.pop("ATEGNATOS_HOME", None)
    try:
        return _build(data, relevant)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            f"Setting `{key}` is not usable: {first['msg']} (in {config_path} or ATEGNATOS_* variables).",
            key=key,
            hint=f"Fix or remove `{key}`; see the Configuration section of the README for valid values.",
        ) from exc


def _build(data: dict[str, Any], env: Mapping[str, str]) -> Settings:
    # pydantic-settings would read os.environ; hand it exactly the variables we chose instead.
    source = EnvSettingsSource(Settings, env_prefix="ATEGNATOS_", env_nested_delimiter="__")
    source.env_vars = {key.lower(): value for key, value in env.items()}
    return Settings(**_deep_merge(data, source()))
