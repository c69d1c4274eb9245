"""The error tree. Every expected failure is an ``AtegnatosError`` with a plain message and a hint.

```
AtegnatosError                 what went wrong (message) + what to do next (hint)
├── ConfigError                a setting is missing or wrong (ategnatos.toml, environment)
├── InvalidRequestError        arguments are well-typed but unusable: fix them and call again
│   └── PathNotAllowedError    a path outside the project's roots, a symlink escape, a special file
├── NotFoundError              an unknown job, instance, dataset, workflow, preference...
├── ConsentError               spending or training needs a confirmation that was not given
├── StateError                 the grimoire cannot be read or migrated; nothing was overwritten
├── BusyError                  another conversation is doing that very thing right now; call again after it
├── UpstreamError              ComfyUI, a GPU cloud or another service failed; don't retry as-is
└── RemoteCommandError         a command on a remote host failed (exit status, stderr tail)
```

``tools/`` turns these into MCP tool errors in exactly one place. Domain code never imports ``mcp``.
"""

from __future__ import annotations

__all__ = [
    "AtegnatosError",
    "BusyError",
    "ConfigError",
    "ConsentError",
    "InvalidRequestError",
    "NotFoundError",
    "PathNotAllowedError",
    "RemoteCommandError",
    "StateError",
    "UpstreamError",
]


class AtegnatosError(Exception):
    """A failure we anticipated; ``message`` and ``hint`` are shown to the user."""

    retryable: bool = False

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nNext step: {self.hint}"
        return self.message


class ConfigError(AtegnatosError):
    """A setting is missing or has a value we cannot use."""

    def __init__(self, message: str, *, key: str = "", hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.key = key


class InvalidRequestError(AtegnatosError):
    """The arguments are well-typed but cannot be used: fix them and call again."""

    retryable = True


class PathNotAllowedError(InvalidRequestError):
    """A path points outside the project's roots, escapes through a symlink, or is not a regular file."""

    def __init__(self, message: str, *, path: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.path = path


class NotFoundError(AtegnatosError):
    """Something named in the request does not exist."""

    def __init__(self, message: str, *, kind: str = "", name: str = "", hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.kind = kind
        self.name = name


class ConsentError(AtegnatosError):
    """An action that spends money or GPU time lacks the user's explicit confirmation."""


class StateError(AtegnatosError):
    """The grimoire cannot be read, parsed or migrated. Nothing was overwritten."""

    def __init__(self, message: str, *, document: str = "", hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.document = document


class BusyError(AtegnatosError):
    """Another conversation (a second server on this project) is doing that very thing right now: nothing was
    done twice; the hint says how to see it, or to call again once it finished."""

    retryable = True


class UpstreamError(AtegnatosError):
    """A service we call (ComfyUI, a GPU cloud) failed or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        service: str,
        status: int | None = None,
        body: str = "",
        hint: str = "",
        retryable: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        self.service = service
        self.status = status
        self.body = body[:500]
        self.retryable = retryable


class RemoteCommandError(AtegnatosError):
    """A command on a remote host exited with a failure."""

    def __init__(self, message: str, *, command: str, exit_status: int | None, stderr_tail: str = "", hint: str = ""):
        super().__init__(message, hint=hint)
        self.command = command
        self.exit_status = exit_status
        self.stderr_tail = stderr_tail[-2000:]
