"""The systemd unit holds exactly the intended directives, whatever the names and arguments.

A model name comes from a GGUF's ``general.name`` and engine arguments from the deploy
form: a newline in either must not add a directive (``ExecStartPre=/bin/sh -c evil``), and
``%`` specifiers, ``$`` and quotes must come back from systemd as the very same text.
The reader below follows systemd.syntax(7) and systemd.service(5): lines (``\\`` at the end
continues one), specifier expansion, then words with double quotes and C escapes, then (in
ExecStart= only) ``$$`` for ``$``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from budcluster.targets.hosts import HostsConfigError, RestartPolicy, systemd_unit_text
from tests.ansible.helpers import plan

EVIL = "x\nExecStartPre=/bin/sh -c evil"
INTENDED = [
    "Description", "After", "Wants", "StartLimitBurst", "StartLimitIntervalSec",
    "Type", "ExecStart", "Environment", "Environment", "Environment", "Restart", "RestartSec",
    "TimeoutStopSec", "KillMode", "StandardOutput", "StandardError", "WantedBy",
]  # fmt: skip
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "s": " "}


def directives(unit: str) -> list[tuple[str, str]]:
    """(key, raw value) of every assignment, with systemd's line continuation applied."""
    lines: list[str] = []
    pending = ""
    for raw in re.split(r"\r\n|\r|\n", unit):
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    found = []
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped[0] in "#;[":
            continue
        key, _, value = stripped.partition("=")
        found.append((key.strip(), value.strip()))
    return found


def without_specifiers(value: str) -> str:
    assert re.search(r"%[^%]|%$", value.replace("%%", "")) is None, f"a specifier in {value!r}"
    return value.replace("%%", "%")


def words(value: str) -> list[str]:
    """systemd's word splitting with quotes and C escapes (extract_first_word)."""
    result: list[str] = []
    current: list[str] | None = None
    quoted = False
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\":
            code = value[index + 1]
            if code == "x":
                current = (current or []) + [chr(int(value[index + 2 : index + 4], 16))]
                index += 4
                continue
            if code in "uU":
                width = 4 if code == "u" else 8
                current = (current or []) + [chr(int(value[index + 2 : index + 2 + width], 16))]
                index += 2 + width
                continue
            current = (current or []) + [_ESCAPES[code]]
            index += 2
            continue
        if char == '"':
            quoted = not quoted
            current = current or []
        elif char in " \t" and not quoted:
            if current is not None:
                result.append("".join(current))
            current = None
        else:
            current = (current or []) + [char]
        index += 1
    assert not quoted, f"unbalanced quotes in {value!r}"
    if current is not None:
        result.append("".join(current))
    return result


def exec_words(value: str) -> list[str]:
    parsed = words(without_specifiers(value))
    for word in parsed:
        assert re.search(r"\$[^$]|\$$", word.replace("$$", "")) is None, f"a variable in {word!r}"
    return [word.replace("$$", "$") for word in parsed]


ODD = [
    EVIL,
    "a\r\nExecStartPost=/bin/true",
    "trailing backslash \\",
    "%h %i %% 100%",
    "$HOME ${PATH} $$",
    'quotes " \' and \\" mixed',
    "tab\tand\x0bvtab\x1b[31m",
    "",
    "uni ü 😀 \u2028 \x85",
]


def _unit(model_name: str, argv: list[str], env: dict[str, str]) -> str:
    runtime = plan(host_command=["python", "--model", "/m", "--port", "8000"])
    runtime = runtime.model_copy(update={"model_name": model_name})
    return systemd_unit_text("demo", runtime, argv, env, RestartPolicy(), run_dir="/var/bc/demo")


def test_a_newline_in_the_model_name_adds_no_directive() -> None:
    unit = _unit(EVIL, ["/usr/bin/server"], {"A": "1", "B": "2", "C": "3"})
    assert [key for key, _ in directives(unit)] == INTENDED
    description = dict(directives(unit))["Description"]
    assert "ExecStartPre" in description and "\n" not in description  # shown, not obeyed


@pytest.mark.parametrize("odd", ODD)
def test_every_value_comes_back_from_systemd_as_given(odd: str) -> None:
    argv = ["/usr/bin/server", "--served-model-name", odd, f"--x={odd}", odd]
    env = {"A": odd, "B": "plain", "C": f"{odd}={odd}"}
    unit = _unit(odd, argv, env)
    found = directives(unit)
    assert [key for key, _ in found] == INTENDED
    values = dict(found)
    assert exec_words(values["ExecStart"]) == argv
    assigned = [words(without_specifiers(v)) for k, v in found if k == "Environment"]
    assert [dict([w.split("=", 1)]) for ws in assigned for w in ws] == [
        {"A": odd}, {"B": "plain"}, {"C": f"{odd}={odd}"},
    ]  # fmt: skip
    description = without_specifiers(values["Description"])
    assert description.isprintable() and "budcluster runtime demo" in description


@pytest.mark.parametrize(
    ("argv", "env", "field"),
    [
        (["/bin/x", "a\0b"], {}, "argument"),
        (["/bin/x"], {"A": "a\0b"}, "A"),
        (["/bin/x"], {"BAD NAME": "1"}, "BAD NAME"),
        (["-/bin/x"], {}, "executable"),
        (["@/bin/x"], {}, "executable"),
    ],
)
def test_what_a_unit_cannot_carry_is_refused_by_name(
    argv: list[str], env: dict[str, str], field: str
) -> None:
    with pytest.raises(HostsConfigError, match=re.escape(field)):
        _unit("tiny", argv, env)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_itself_reads_the_unit_without_a_complaint(tmp_path: Path) -> None:
    for index, odd in enumerate(ODD):
        unit = tmp_path / f"odd{index}.service"
        unit.write_text(_unit(odd, ["/bin/echo", odd, f"--x={odd}"], {"A": odd, "B": odd}))
        checked = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(unit)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert (checked.returncode, checked.stderr) == (0, ""), odd
