"""Caller-supplied values reach the playbooks verbatim and are never run as templates.

ansible-core 2.19 treats extra vars as trusted templates: a ``{{ lookup('pipe', ...) }}``
in an engine argument, a model URI or a GGUF's model name would run on the worker, even
with ``--check``. Each payload below runs ``touch <marker>`` if it is ever templated.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from budcluster.adapters.ansible import run_playbook
from budcluster.targets.base import ModelSourceSpec, RolloutSpec
from budcluster.targets.hosts import (
    HostsConfigError,
    HostsOperationFailed,
    HostsTarget,
    RestartPolicy,
)
from tests.ansible.helpers import free_port, local_inventory, plan

ECHO_VARS = str(Path(__file__).parent / "files" / "echo_vars.yml")
SECRET_ECHO = str(Path(__file__).parent / "files" / "secret_echo.yml")

# A runtime that logs the argv and the one variable it was given, then serves nothing.
ARGV_ECHO = (
    "import json, os, sys, time; "
    "print('ARGV ' + json.dumps({'argv': sys.argv[1:], 'value': os.environ.get('VALUE')}), "
    "flush=True); time.sleep(120)"
)


class Markers:
    """Payloads that each create their own marker file when templated."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def payload(self, name: str) -> str:
        return "{{ lookup('pipe', 'touch " + str(self.directory / name) + "') }}"

    def created(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir())


@pytest.fixture
def markers(tmp_path: Path) -> Markers:
    directory = tmp_path / "markers"
    directory.mkdir()
    return Markers(directory)


# Jinja in every form Ansible recognises, plus shell metacharacters and odd text.
def _odd_strings(markers: Markers, field: str) -> list[str]:
    return [
        markers.payload(field),
        "{% if true %}" + markers.payload(field + "-stmt") + "{% endif %}",
        "{# comment #}{{ 7 * 7 }}",
        "$(id) `id` ; rm -rf / && ${HOME} 100% \"q\" 'q' \\ end",
        "line one\nline two\ttab ü 😀",
    ]


@pytest.mark.parametrize("check", [False, True], ids=["real", "check"])
def test_extra_vars_arrive_verbatim_and_are_never_templated(
    markers: Markers, tmp_path: Path, check: bool
) -> None:
    texts = _odd_strings(markers, "text")
    nested = {
        "list": [markers.payload("list-item"), 3, True, None, 1.5],
        # Strings that YAML would read as other types when left to guess.
        "looks_typed": ["400000", "true", "null", "1.0", "2001-12-14", "0x10", "~", ""],
        markers.payload("key"): {"deeper": markers.payload("deep")},
    }
    out_file = tmp_path / "out.json"
    for text in texts:
        result = run_playbook(
            ECHO_VARS,
            local_inventory(),
            extravars={"text": text, "nested": nested, "count": 41, "out_file": str(out_file)},
            timeout_s=60,
            check=check,
        )
        values = result.result("localhost", "values")
        assert values["echoed"] == text
        assert values["joined"] == "prefix:" + text
        assert values["nested"] == nested
        assert int(values["count"]) == 42  # numbers stay numbers
        if check:
            assert not out_file.exists()
        else:
            assert json.loads(out_file.read_text()) == {"text": text, "nested": nested}
    assert markers.created() == []


def test_secret_extravars_are_not_templated_either(markers: Markers) -> None:
    secret = markers.payload("secret")
    result = run_playbook(
        SECRET_ECHO,
        local_inventory(),
        extravars={"label": markers.payload("label")},
        secret_extravars={"secret_token": secret},
        timeout_s=60,
    )
    assert result.result("localhost", "echo") == {
        "length": len(secret),
        "label": markers.payload("label"),
    }
    assert markers.created() == []


@pytest.fixture
def odd_target(tmp_path: Path) -> Iterator[HostsTarget]:
    target = HostsTarget(
        local_inventory(),
        executables={"python": sys.executable},
        # Not a template marker file: a state dir that must stay exactly this name.
        state_dir=str(tmp_path / "state {{ 6 * 7 }} %h"),
        restart=RestartPolicy(max_restarts=0, backoff_s=0.2, stable_s=30, stop_timeout_s=5),
        runtime_mode="process",
    )
    yield target
    target.delete("odd", remove_log=True)


def _odd_spec(markers: Markers, tmp_path: Path) -> RolloutSpec:
    model_dir = tmp_path / "model {{ 6 * 7 }}"
    model_dir.mkdir()
    runtime = plan(
        host_command=[
            "python", "-c", ARGV_ECHO, "--model", "/controller/tiny", "--port", "8000",
            "--served-model-name", markers.payload("served-name"),
            "--engine-arg", markers.payload("engine-arg"),
            "--stmt", "{% for x in [1] %}" + markers.payload("engine-stmt") + "{% endfor %}",
        ],
        host_env={"VALUE": markers.payload("env-value")},
    )  # fmt: skip
    # The GGUF's general.name becomes the plan's model name (the systemd Description).
    runtime = runtime.model_copy(update={"model_name": markers.payload("model-name")})
    return RolloutSpec("odd", runtime, str(model_dir), port=free_port())


def test_roll_out_passes_every_field_verbatim(
    odd_target: HostsTarget, markers: Markers, tmp_path: Path
) -> None:
    spec = _odd_spec(markers, tmp_path)

    odd_target.roll_out(spec, check=True)
    assert markers.created() == []
    run_dir = Path(odd_target.state_dir) / "runtimes" / "odd"
    assert not (run_dir / "spec.json").exists()  # --check wrote nothing

    odd_target.roll_out(spec)
    assert markers.created() == []
    written = json.loads((run_dir / "spec.json").read_text())
    expected_argv = odd_target.render(spec)["runtime_spec"]["argv"]
    assert written["argv"] == expected_argv
    assert written["argv"][4] == spec.model_path  # the model path, as given
    assert written["env"] == {"VALUE": markers.payload("env-value")}

    def logged() -> dict[str, object] | None:
        for line in (run_dir / "runtime.log").read_text().splitlines():
            if line.startswith("ARGV "):
                return dict(json.loads(line[len("ARGV ") :]))
        return None

    import time

    deadline = time.monotonic() + 20
    while logged() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert logged() == {"argv": expected_argv[3:], "value": markers.payload("env-value")}
    assert markers.created() == []


def test_systemd_form_is_not_templated_in_check_mode(markers: Markers, tmp_path: Path) -> None:
    target = HostsTarget(
        local_inventory(), executables={"python": sys.executable},
        state_dir=str(tmp_path / "state"), runtime_mode="systemd",
    )  # fmt: skip
    spec = _odd_spec(markers, tmp_path)
    try:
        target.roll_out(spec, check=True)
    except HostsOperationFailed as exc:
        # Without systemd as PID 1 the run gets past writing the unit (its text rendered,
        # in check mode) and stops where systemctl is asked.
        assert "'Enable and start the unit'" in str(exc), exc
    assert markers.created() == []


def test_stage_model_takes_the_uri_verbatim(markers: Markers, tmp_path: Path) -> None:
    target = HostsTarget(
        local_inventory(), executables={"python": sys.executable},
        state_dir=str(tmp_path / "state"),
    )  # fmt: skip
    # A directory whose name is a template: it is found only if the URI arrives as given.
    source = tmp_path / "src {{ lookup('pipe', 'id -u') }} {% raw %}"
    source.mkdir()
    (source / "config.json").write_text("{}")
    staged = target.stage_model(ModelSourceSpec(str(source)), "tiny", ["localhost"])
    assert staged.files == 1
    assert markers.created() == []

    # --check does not copy, but reports the URI: it must not be templated either.
    uri = "/nonexistent/" + markers.payload("uri")
    run_playbook(
        "stage_model.yml",
        local_inventory(),
        extravars={"model_name": "tiny", "source_uri": uri,
                   "budcluster_state_dir": str(tmp_path / "state"),
                   "controller_python": sys.executable},
        secret_extravars={"transfer_env": {"X": markers.payload("credential")}},
        timeout_s=60,
        check=True,
    )  # fmt: skip
    assert markers.created() == []


@pytest.mark.parametrize("name", ["{{ 7 * 7 }}", "a\nb", "../x", "x" * 64])
def test_stage_model_refuses_an_unsafe_model_name(tmp_path: Path, name: str) -> None:
    target = HostsTarget(local_inventory(), state_dir=str(tmp_path / "state"))
    with pytest.raises(HostsConfigError, match="model_name"):
        target.stage_model(ModelSourceSpec(str(tmp_path)), name, ["localhost"])


@pytest.mark.parametrize("state_dir", ["/srv/$HOME/bc", "/srv/${X}", "/srv/a\nb", ""])
def test_a_state_dir_that_modules_would_rewrite_is_refused(state_dir: str) -> None:
    with pytest.raises(HostsConfigError, match="state_dir"):
        HostsTarget(local_inventory(), state_dir=state_dir)
