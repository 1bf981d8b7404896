"""Label selectors (string and LabelSelector form), node-selector terms and field selectors."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.k8s_emulator.errors import bad_request

Labels = dict[str, str]


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Labels) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        # "!=" and "notin" match when the key is absent, as in the real apiserver.
        return not present or value not in self.values


_TERM = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9._/-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<val>[A-Za-z0-9._-]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<set>[^)]*)\))?\s*$"
)


def _split_terms(text: str) -> list[str]:
    terms: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return terms


def parse_label_selector(text: str | None) -> list[Requirement]:
    if not text:
        return []
    requirements: list[Requirement] = []
    for term in _split_terms(text):
        match = _TERM.match(term)
        if not match:
            raise bad_request(f"unable to parse requirement: {term.strip()!r}")
        key = match.group("key")
        if match.group("neg"):
            requirements.append(Requirement(key, "!"))
        elif match.group("op"):
            op = "!=" if match.group("op") == "!=" else "="
            requirements.append(Requirement(key, op, (match.group("val"),)))
        elif match.group("setop"):
            values = tuple(v.strip() for v in match.group("set").split(",") if v.strip())
            requirements.append(Requirement(key, match.group("setop"), values))
        else:
            requirements.append(Requirement(key, "exists"))
    return requirements


def labels_match(requirements: list[Requirement], labels: Labels | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in requirements)


def selector_from_object(selector: dict[str, Any] | None) -> list[Requirement]:
    """A ``LabelSelector`` (matchLabels + matchExpressions) as requirements."""
    if not selector:
        return []
    reqs = [Requirement(k, "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        reqs.append(
            Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ()))
        )
    return reqs


def selector_string(selector: dict[str, Any] | None) -> str:
    """``a=b,c in (d)`` text of a LabelSelector, as kubectl shows it."""
    parts = [f"{k}={v}" for k, v in ((selector or {}).get("matchLabels") or {}).items()]
    for expr in (selector or {}).get("matchExpressions") or []:
        op = expr["operator"]
        if op == "Exists":
            parts.append(expr["key"])
        elif op == "DoesNotExist":
            parts.append(f"!{expr['key']}")
        else:
            parts.append(f"{expr['key']} {op.lower()} ({','.join(expr.get('values') or [])})")
    return ",".join(parts)


def node_selector_term_matches(term: dict[str, Any], node: dict[str, Any]) -> bool:
    """One NodeSelectorTerm: all matchExpressions (labels) and matchFields (metadata.name)."""
    labels = node["metadata"].get("labels") or {}
    for expr in term.get("matchExpressions") or []:
        if not _node_expr(expr, labels.get(expr["key"]), expr["key"] in labels):
            return False
    for expr in term.get("matchFields") or []:
        if expr["key"] != "metadata.name":
            return False
        if not _node_expr(expr, node["metadata"]["name"], True):
            return False
    return True


def _node_expr(expr: dict[str, Any], value: str | None, present: bool) -> bool:
    op = expr["operator"]
    values = [str(v) for v in expr.get("values") or []]
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and value is not None and values:
        try:
            a, b = int(value), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


# --- field selectors ------------------------------------------------------------------

_COMMON_FIELDS = {"metadata.name", "metadata.namespace"}
SUPPORTED_FIELDS: dict[str, set[str]] = {
    "pods": {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "events": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "nodes": {"spec.unschedulable"},
    "namespaces": {"status.phase"},
    "secrets": {"type"},
    "replicasets": {"status.replicas"},
    "jobs": {"status.successful"},
}


def _field_value(obj: dict[str, Any], path: str) -> str:
    if path == "source":
        return str((obj.get("source") or {}).get("component", ""))
    if path == "status.successful":
        return str((obj.get("status") or {}).get("succeeded", 0))
    current: Any = obj
    for part in path.split("."):
        current = current.get(part) if isinstance(current, dict) else None
    if isinstance(current, bool):
        return "true" if current else "false"
    return "" if current is None else str(current)


def parse_field_selector(plural: str, text: str | None) -> Callable[[dict[str, Any]], bool]:
    if not text:
        return lambda _obj: True
    allowed = _COMMON_FIELDS | SUPPORTED_FIELDS.get(plural, set())
    checks: list[tuple[str, bool, str]] = []
    for term in text.split(","):
        term = term.strip()
        if not term:
            continue
        match = re.match(r"^([^=!]+)(==|=|!=)(.*)$", term)
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        key, op, value = match.group(1).strip(), match.group(2), match.group(3).strip()
        if key not in allowed:
            raise bad_request(f"field label not supported: {key}")
        checks.append((key, op != "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, k) == v) == want for k, want, v in checks)

    return matches
