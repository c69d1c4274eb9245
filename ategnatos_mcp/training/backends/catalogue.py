"""Check rendered backend settings against the option catalogues in ``training/data/``.

sd-scripts does not check a ``--config_file`` TOML at all (unknown keys are ignored, wrong types kept), so
every key, type and choice we write is checked here before anything runs. A failure is our bug, not the
user's: it raises ``CatalogueError``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "CatalogueError",
    "aitoolkit_catalogue",
    "catalogue_version",
    "check_aitoolkit",
    "check_kohya_args",
    "check_kohya_dataset",
    "check_simpletuner",
    "check_simpletuner_dataloader",
    "kohya_catalogue",
    "simpletuner_catalogue",
]


class CatalogueError(ValueError):
    """A rendered key, type or value is not accepted by the backend at the catalogued commit."""


@cache
def _load(name: str) -> dict[str, Any]:
    text = resources.files("ategnatos_mcp.training").joinpath("data", name).read_text(encoding="utf-8")
    return json.loads(text)


def kohya_catalogue() -> dict[str, Any]:
    return _load("kohya-sd-scripts-options.json")


def aitoolkit_catalogue() -> dict[str, Any]:
    return _load("ai-toolkit-options.json")


def simpletuner_catalogue() -> dict[str, Any]:
    return _load("simpletuner-options.json")


def catalogue_version(backend: str) -> dict[str, str]:
    """The commit (and date, package version) of ``backend`` its catalogue was read from: the version to install."""
    files = {"kohya": "kohya-sd-scripts-options.json", "simpletuner": "simpletuner-options.json"}
    header = _load(files.get(backend, "ai-toolkit-options.json"))["header"]
    note = str(header.get("package_version", "")).split(" (")[0]
    return {"commit": header["commit"], "date": header["commit_date"], "note": f"version {note}" if note else ""}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_ok(type_name: str | None, value: Any) -> bool:
    checks = {
        None: lambda v: True,
        "None": lambda v: True,
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": _is_number,
        "int_or_float": _is_number,
        "float or int": _is_number,
        "str": lambda v: isinstance(v, str),
        "Path": lambda v: isinstance(v, str),
        "dict": lambda v: isinstance(v, dict),
        "list": lambda v: isinstance(v, list),
        "List[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "int or [int, int]": lambda v: isinstance(v, int) or (isinstance(v, list) and len(v) == 2),
    }
    check = checks.get(type_name)
    if check is None:
        return True  # literal/enum types are checked through their choices
    return check(value)


# sd-scripts ---------------------------------------------------------------------------------------
@cache
def _kohya_options() -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in kohya_catalogue()["options"]}


def check_kohya_args(args: dict[str, Any], script: str) -> None:
    """Every ``--config_file`` key exists for ``script`` with a valid type and choice."""
    options = _kohya_options()
    accepted = kohya_catalogue()["accepted_values"]
    for key, value in args.items():
        option = options.get(key)
        if option is None or script not in option["scripts"]:
            raise CatalogueError(f"sd-scripts {script} has no option {key!r}")
        nargs = option["nargs"]
        values = value if nargs in ("*", "+") and isinstance(value, list) else [value]
        for item in values:
            if not _type_ok(option["type"], item):
                raise CatalogueError(f"sd-scripts option {key!r} needs {option['type']}, got {item!r}")
            if option["choices"] and item not in option["choices"]:
                raise CatalogueError(f"sd-scripts option {key!r} accepts {option['choices']}, got {item!r}")
    if "optimizer_type" in args:
        names = {v.lower() for v in accepted["optimizer_type"]["values"]}
        if str(args["optimizer_type"]).lower() not in names:
            raise CatalogueError(f"sd-scripts does not know optimizer {args['optimizer_type']!r}")
    if "lr_scheduler" in args and args["lr_scheduler"] not in accepted["lr_scheduler"]["values"]:
        raise CatalogueError(f"sd-scripts does not know scheduler {args['lr_scheduler']!r}")
    if "network_module" in args and args["network_module"] not in accepted["network_module"]:
        raise CatalogueError(f"sd-scripts does not know network module {args['network_module']!r}")


def check_kohya_dataset(doc: dict[str, Any]) -> None:
    """Every dataset-TOML key is allowed at the level it is written."""
    keys = {k["key"]: k for k in kohya_catalogue()["dataset_config"]["keys"]}

    def check_level(table: dict[str, Any], level: str, nested: str | None) -> None:
        for key, value in table.items():
            if key == nested:
                continue
            spec = keys.get(key)
            if spec is None or level not in spec["allowed_at"]:
                raise CatalogueError(f"sd-scripts dataset config does not allow {key!r} in [{level}]")
            if not _type_ok(spec["type"], value):
                raise CatalogueError(f"sd-scripts dataset key {key!r} needs {spec['type']}, got {value!r}")

    unknown = set(doc) - {"general", "datasets"}
    if unknown:
        raise CatalogueError(f"sd-scripts dataset config has no top-level {sorted(unknown)}")
    check_level(doc.get("general", {}), "general", None)
    for dataset in doc.get("datasets", []):
        check_level(dataset, "datasets", "subsets")
        for subset in dataset.get("subsets", []):
            check_level(subset, "datasets.subsets", None)


# ai-toolkit ---------------------------------------------------------------------------------------
@cache
def _aitoolkit_options() -> dict[str, dict[str, Any]]:
    return {o["path"]: o for o in aitoolkit_catalogue()["options"]}


_AITK_ENUMS = {"ModelArch": "model_arch", "NetworkType": "network_type", "ContentOrStyleType": "content_or_style"}


def _aitk_choices(option: dict[str, Any]) -> list[str] | None:
    accepted = aitoolkit_catalogue()["accepted_values"]
    if option["type"] == "ModelArch":
        arch = accepted["model_arch"]
        return [*arch["literal_in_config_modules"], *arch["registered_model_classes"]]
    return option["choices"]


def _walk_aitk(node: dict[str, Any], path: str) -> None:
    options = _aitoolkit_options()
    for key, value in node.items():
        child = f"{path}.{key}"
        option = options.get(child)
        if option is None:
            raise CatalogueError(f"ai-toolkit has no setting {child}")
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                _walk_aitk(item, f"{child}[]")
            continue
        if isinstance(value, dict) and option["type"] in (None, "None", "dict") and not child.endswith("_params"):
            _walk_aitk(value, child)
            continue
        if child.endswith("datasets[].resolution") and isinstance(value, list):
            if not all(isinstance(v, int) for v in value):
                raise CatalogueError("ai-toolkit datasets[].resolution must be whole numbers")
            continue
        if not _type_ok(option["type"], value):
            raise CatalogueError(f"ai-toolkit setting {child} needs {option['type']}, got {value!r}")
        choices = _aitk_choices(option)
        if choices and value not in choices:
            raise CatalogueError(f"ai-toolkit setting {child} accepts {choices}, got {value!r}")


def check_aitoolkit(job: dict[str, Any]) -> None:
    """Every key of an ai-toolkit job exists at its YAML path with a valid type and choice."""
    catalogue = aitoolkit_catalogue()
    unknown = set(job) - {"job", "config", "meta"}
    if unknown:
        raise CatalogueError(f"ai-toolkit job has no top-level {sorted(unknown)}")
    if job.get("job") not in catalogue["top_level"]["job"]["values"]:
        raise CatalogueError(f"ai-toolkit job type {job.get('job')!r} is unknown")
    config = dict(job["config"])
    processes = config.pop("process")
    _walk_aitk(config, "config")
    accepted = catalogue["accepted_values"]
    for process in processes:
        process = dict(process)
        if process.pop("type", None) not in catalogue["process_types"]:
            raise CatalogueError("ai-toolkit process type is unknown")
        _walk_aitk(process, "config.process[]")
        train = process.get("train", {})
        if "optimizer" in train and not _aitk_optimizer_ok(train["optimizer"], accepted["optimizer"]):
            raise CatalogueError(f"ai-toolkit does not know optimizer {train['optimizer']!r}")
        if "lr_scheduler" in train and train["lr_scheduler"] not in accepted["lr_scheduler"]:
            raise CatalogueError(f"ai-toolkit does not know scheduler {train['lr_scheduler']!r}")
        for key in ("noise_scheduler",):
            if key in train and train[key] not in accepted["noise_scheduler_and_sample_sampler"]:
                raise CatalogueError(f"ai-toolkit does not know {key} {train[key]!r}")


def _aitk_optimizer_ok(name: str, accepted: dict[str, Any]) -> bool:
    lowered = name.lower()
    return lowered in accepted["exact"] or lowered.startswith(("prodigy", "lion", "adam", "dadaptation"))


# SimpleTuner --------------------------------------------------------------------------------------
@cache
def _simpletuner_options() -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {}
    for option in simpletuner_catalogue()["options"]:
        options[option["name"]] = option
    return options


def check_simpletuner(config: dict[str, Any]) -> None:
    """Every config.json key is a command-line option of SimpleTuner with a valid type, choice and range."""
    options = _simpletuner_options()
    accepted = simpletuner_catalogue()["accepted_values"]
    for key, value in config.items():
        option = options.get(key)
        if option is None or not option["accepted_by_cli"]:
            raise CatalogueError(f"SimpleTuner has no option {key!r}")
        if not _type_ok(option["type"], value):
            raise CatalogueError(f"SimpleTuner option {key!r} needs {option['type']}, got {value!r}")
        if option["choices"] and value not in option["choices"]:
            raise CatalogueError(f"SimpleTuner option {key!r} accepts {option['choices']}, got {value!r}")
        limits = option["validation"] or {}
        if limits.get("min") is not None and _is_number(value) and value < limits["min"]:
            raise CatalogueError(f"SimpleTuner option {key!r} must be at least {limits['min']}, got {value!r}")
        if limits.get("max") is not None and _is_number(value) and value > limits["max"]:
            raise CatalogueError(f"SimpleTuner option {key!r} must be at most {limits['max']}, got {value!r}")
        if limits.get("divisible_by") and _is_number(value) and value % limits["divisible_by"]:
            raise CatalogueError(f"SimpleTuner option {key!r} must divide by {limits['divisible_by']}")
    if "model_family" in config and config["model_family"] not in accepted["model_family"]:
        raise CatalogueError(f"SimpleTuner does not know model family {config['model_family']!r}")
    family = accepted["model_family"].get(config.get("model_family", ""), {})
    if "model_flavour" in config and config["model_flavour"] not in family.get("flavours", []):
        raise CatalogueError(f"SimpleTuner {config.get('model_family')} has no flavour {config['model_flavour']!r}")
    if "optimizer" in config and config["optimizer"] not in accepted["optimizer"]:
        raise CatalogueError(f"SimpleTuner does not know optimizer {config['optimizer']!r}")


def check_simpletuner_dataloader(backends: list[dict[str, Any]]) -> None:
    """Every multidatabackend.json key is one SimpleTuner's dataloader reads; one default text-embed backend."""
    known = {k["key"] for k in simpletuner_catalogue()["dataloader"]["keys"]}
    for backend in backends:
        unknown = set(backend) - known
        if unknown:
            raise CatalogueError(f"SimpleTuner dataloader does not read {sorted(unknown)}")
    embeds = [b for b in backends if b.get("dataset_type") == "text_embeds" and b.get("default") is True]
    if len(embeds) != 1:
        raise CatalogueError("SimpleTuner needs exactly one default text_embeds backend")
