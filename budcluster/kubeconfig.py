"""Reading a kubeconfig without ever echoing it, and without trusting it.

YAML errors quote the offending line, which may hold a token, so parse errors are
re-raised with the position only and without chaining.

A kubeconfig comes from whoever adds a credential, yet the client that reads it runs on the
worker: ``exec`` starts a program there, ``auth-provider`` runs refresh code, and
``tokenFile``, ``client-key``, ``client-certificate`` and ``certificate-authority`` read the
worker's files (``tokenFile`` even sends one as the bearer token). So only data fields pass,
and an ``exec`` plugin only when ``BUDCLUSTER_KUBECONFIG_EXEC_ALLOW`` names it. Every entry
is checked, not just the chosen context's, since the whole file is handed to kubectl/helm.

Kept as they are: ``username``/``password`` and impersonation (``as``...) are data the API
server judges; ``insecure-skip-tls-verify`` and ``tls-server-name`` only weaken the
kubeconfig's own connection; ``proxy-url`` must be an http(s) or socks5 URL, which reaches
no further than ``server`` already can.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import yaml

from budcluster.errors import ConfigurationError
from budcluster.settings import get_settings


class KubeconfigInvalid(ConfigurationError):
    """The kubeconfig cannot be used. The message never contains its content."""


_EXPORT = "export it with `kubectl config view --raw --minify --flatten`"

# Fields the client would follow to a file on the worker, and the field to use instead.
_PATH_FIELDS = {
    "user": {
        "tokenFile": "token",
        "client-certificate": "client-certificate-data",
        "client-key": "client-key-data",
    },
    "cluster": {"certificate-authority": "certificate-authority-data"},
}
_DATA_FIELDS = {
    "user": {
        "token",
        "client-certificate-data",
        "client-key-data",
        "username",
        "password",
        "as",
        "as-uid",
        "as-groups",
        "as-user-extra",
        "exec",
        "extensions",
    },
    "cluster": {
        "server",
        "certificate-authority-data",
        "insecure-skip-tls-verify",
        "tls-server-name",
        "proxy-url",
        "disable-compression",
        "extensions",
    },
}

_EXEC_EXTENSION = "client.authentication.k8s.io/exec"
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
_EXEC_FIELDS = {
    "apiVersion",
    "command",
    "args",
    "env",
    "installHint",
    "provideClusterInfo",
    "interactiveMode",
}
# Flags each known plugin may get after its allowed prefix. Left out on purpose, because
# they read a file, pick another identity or config of the worker, or send the request
# elsewhere: aws --profile, --cli-input-json/yaml, --endpoint-url, --ca-bundle, --debug;
# kubelogin --client-certificate, --federated-token-file, --token-cache-dir,
# --authority-host, --username/--password. A tool not listed here gets no extra argument:
# its allow-list entry is its whole command line.
_EXEC_FLAGS = {
    "aws": {"--cluster-name", "--cluster-id", "--region", "--role-arn", "--output"},
    "kubelogin": {
        "--login",
        "-l",
        "--server-id",
        "--client-id",
        "--tenant-id",
        "--environment",
        "-e",
        "--pop-enabled",
        "--pop-claims",
    },
}
# Variables a plugin may be given: credentials and plain choices. Anything else may name a
# file or a program (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, AZURE_FEDERATED_TOKEN_FILE,
# AAD_SERVICE_PRINCIPAL_CLIENT_CERTIFICATE, KUBECACHEDIR, LD_PRELOAD, PATH, PYTHONPATH...).
# AWS_PROFILE (like --profile) is left out too: it would let a kubeconfig pick another of the
# worker's own AWS identities and send a token signed by it to the kubeconfig's server.
SAFE_EXEC_ENV = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_STS_REGIONAL_ENDPOINTS",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "AAD_SERVICE_PRINCIPAL_CLIENT_ID",
        "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET",
        "AAD_LOGIN_METHOD",
    }
)
# aws reads any parameter value given as file:// or fileb://; some CLIs read @file.
_FILE_VALUE_MARKERS = ("file://", "fileb://")
_PROXY_SCHEMES = ("http://", "https://", "socks5://", "socks5h://")


def parse_kubeconfig(
    text: str,
    *,
    context: str | None = None,
    source: str = "kubeconfig",
    exec_allow: Sequence[Sequence[str]] | None = None,
) -> tuple[dict[str, Any], str]:
    """Validate a kubeconfig and pick the context. Returns (config, context name).

    ``exec_allow`` is the list of allowed exec argv prefixes; default the
    ``BUDCLUSTER_KUBECONFIG_EXEC_ALLOW`` setting.
    """
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise KubeconfigInvalid(f"{source} is not valid YAML{where}.") from None
    if not isinstance(config, dict):
        raise KubeconfigInvalid(
            f"{source} must be a YAML mapping with clusters, contexts and users."
        )
    return config, check_kubeconfig(config, context=context, source=source, exec_allow=exec_allow)


def check_kubeconfig(
    config: Mapping[str, Any],
    *,
    context: str | None = None,
    source: str = "kubeconfig",
    exec_allow: Sequence[Sequence[str]] | None = None,
) -> str:
    """Check an already parsed kubeconfig; returns the context to use."""
    if exec_allow is None:
        exec_allow = get_settings().kubeconfig_exec_prefixes()
    for key in ("clusters", "contexts", "users"):
        if not isinstance(config.get(key), list) or not config[key]:
            raise KubeconfigInvalid(f"{source} has no '{key}' list; {_EXPORT}.")
    clusters = _entries(config, "clusters", "cluster")
    users = _entries(config, "users", "user")
    contexts = _entries(config, "contexts", "context")
    for name, cluster in clusters.items():
        _check_cluster(f"clusters[{name}].cluster", cluster)
    for name, user in users.items():
        _check_user(f"users[{name}].user", user or {}, exec_allow)
    chosen = context or config.get("current-context")
    names = ", ".join(contexts)
    if not chosen:
        raise KubeconfigInvalid(
            f"{source} has no current-context; pass --context (one of: {names})."
        )
    if not isinstance(chosen, str) or chosen not in contexts:
        raise KubeconfigInvalid(f"context '{chosen}' is not in {source}; choose one of: {names}.")
    _check_context(f"contexts[{chosen}].context", contexts[chosen], clusters, users)
    return chosen


def _entries(config: Mapping[str, Any], key: str, payload: str) -> dict[str, Any]:
    """``name -> payload`` of one of the kubeconfig's lists, each entry's shape checked."""
    found: dict[str, Any] = {}
    for index, entry in enumerate(config[key]):
        where = f"{key}[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeconfigInvalid(
                f"{where} must be a mapping with a 'name' and a '{payload}' mapping; {_EXPORT}."
            )
        value = entry.get(payload)
        # `user:` with nothing under it is a user without credentials; the others need fields.
        if not isinstance(value, dict) and not (payload == "user" and value is None):
            raise KubeconfigInvalid(
                f"{key}[{entry['name']}].{payload} must be a mapping, not "
                f"{_type_name(value)}; {_EXPORT}."
            )
        found[entry["name"]] = value
    return found


def _type_name(value: object) -> str:
    return {str: "a string", list: "a list", int: "a number", type(None): "empty"}.get(
        type(value), type(value).__name__
    )


def _check_fields(where: str, kind: str, fields: Mapping[str, Any]) -> None:
    for field in fields:
        if field in _PATH_FIELDS[kind]:
            raise KubeconfigInvalid(
                f"{where}.{field}: the kubeconfig may not point at a file on the worker; put "
                f"the content in '{_PATH_FIELDS[kind][field]}' instead "
                "(`kubectl config view --raw --minify --flatten` inlines it)."
            )
        if field == "auth-provider":
            raise KubeconfigInvalid(
                f"{where}.auth-provider: auth providers run refresh code on the worker and "
                "are refused; use a 'token' or client-certificate-data/client-key-data, or "
                "an allowed exec plugin."
            )
        if field not in _DATA_FIELDS[kind]:
            raise KubeconfigInvalid(
                f"{where}.{field}: not a field this project accepts in a {kind} entry; "
                f"remove it (accepted: {', '.join(sorted(_DATA_FIELDS[kind]))})."
            )


def _check_cluster(where: str, cluster: Mapping[str, Any]) -> None:
    _check_fields(where, "cluster", cluster)
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise KubeconfigInvalid(f"{where}.server must be the API server's https:// URL.")
    proxy = cluster.get("proxy-url")
    if proxy is not None and (
        not isinstance(proxy, str) or not proxy.lower().startswith(_PROXY_SCHEMES)
    ):
        raise KubeconfigInvalid(
            f"{where}.proxy-url: must be an http://, https:// or socks5:// URL, or be removed."
        )


def _check_user(where: str, user: Mapping[str, Any], exec_allow: Sequence[Sequence[str]]) -> None:
    _check_fields(where, "user", user)
    if "exec" in user:
        _check_exec(f"{where}.exec", user["exec"], exec_allow)


def _check_context(
    where: str, context: Mapping[str, Any], clusters: Mapping[str, Any], users: Mapping[str, Any]
) -> None:
    cluster = context.get("cluster")
    if not isinstance(cluster, str) or cluster not in clusters:
        raise KubeconfigInvalid(
            f"{where}.cluster names cluster '{cluster}', which the kubeconfig does not define; "
            f"{_EXPORT}."
        )
    user = context.get("user")
    if user is not None and (not isinstance(user, str) or user not in users):
        raise KubeconfigInvalid(
            f"{where}.user names user '{user}', which the kubeconfig does not define; {_EXPORT}."
        )
    namespace = context.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise KubeconfigInvalid(f"{where}.namespace must be a string.")


def _allowed_text(exec_allow: Sequence[Sequence[str]]) -> str:
    return ", ".join(repr(" ".join(p)) for p in exec_allow) or "none"


def _check_exec(where: str, plugin: object, exec_allow: Sequence[Sequence[str]]) -> None:
    if not exec_allow:
        raise KubeconfigInvalid(
            f"{where}: exec plugins run programs on the worker and are switched off; use a "
            "token or client-certificate-data/client-key-data, or list the plugin in "
            "BUDCLUSTER_KUBECONFIG_EXEC_ALLOW (e.g. 'aws eks get-token')."
        )
    if not isinstance(plugin, dict):
        raise KubeconfigInvalid(f"{where} must be a mapping with apiVersion and command.")
    for field in plugin:
        if field not in _EXEC_FIELDS:
            raise KubeconfigInvalid(
                f"{where}.{field}: not an exec plugin field this project accepts; remove it."
            )
    if plugin.get("apiVersion") not in EXEC_API_VERSIONS:
        raise KubeconfigInvalid(
            f"{where}.apiVersion must be one of {', '.join(EXEC_API_VERSIONS)}."
        )
    command = plugin.get("command")
    if (
        not isinstance(command, str)
        or not command
        or any(c in command for c in "/\\")
        or command != command.strip()
        or len(command.split()) != 1
    ):
        raise KubeconfigInvalid(
            f"{where}.command must be a bare program name found on the worker's PATH "
            "(e.g. 'aws'), not a path."
        )
    args = plugin.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise KubeconfigInvalid(f"{where}.args must be a list of strings.")
    _check_exec_argv(f"{where}.args", [command, *args], exec_allow)
    _check_exec_env(f"{where}.env", plugin.get("env"))


def _check_exec_argv(where: str, argv: list[str], exec_allow: Sequence[Sequence[str]]) -> None:
    # The longest match wins, so an operator can allow one longer command line whole.
    matches = [p for p in exec_allow if tuple(argv[: len(p)]) == tuple(p)]
    prefix = max(matches, key=len) if matches else None
    if prefix is None:
        raise KubeconfigInvalid(
            f"{where}: '{argv[0]}' with these arguments is not an allowed exec plugin; allowed "
            f"(BUDCLUSTER_KUBECONFIG_EXEC_ALLOW): {_allowed_text(exec_allow)}."
        )
    known = _EXEC_FLAGS.get(argv[0], set())
    for arg in argv[len(prefix) :]:
        if any(marker in arg.lower() for marker in _FILE_VALUE_MARKERS) or arg.startswith("@"):
            raise KubeconfigInvalid(
                f"{where}: an argument names a file to read on the worker (file://, fileb:// "
                "or @); give the value itself."
            )
        if arg.startswith("-") and arg.split("=", 1)[0] not in known:
            flags = ", ".join(sorted(known)) or "none"
            raise KubeconfigInvalid(
                f"{where}: flag '{arg.split('=', 1)[0]}' is not allowed for '{' '.join(prefix)}' "
                f"(allowed: {flags}); to allow a longer command line, add it whole to "
                "BUDCLUSTER_KUBECONFIG_EXEC_ALLOW."
            )
        if not arg.startswith("-") and not known:
            raise KubeconfigInvalid(
                f"{where}: '{' '.join(prefix)}' takes no further arguments here; add the whole "
                "command line to BUDCLUSTER_KUBECONFIG_EXEC_ALLOW to allow them."
            )


def _check_exec_env(where: str, env: object) -> None:
    if env is None:
        return
    if not isinstance(env, list):
        raise KubeconfigInvalid(f"{where} must be a list of name/value mappings.")
    for entry in env:
        if (
            not isinstance(entry, dict)
            or set(entry) != {"name", "value"}
            or not isinstance(entry["name"], str)
            or not isinstance(entry["value"], str)
        ):
            raise KubeconfigInvalid(f"{where} entries must be mappings of a name and a value.")
        if entry["name"] not in SAFE_EXEC_ENV:
            raise KubeconfigInvalid(
                f"{where}: variable '{entry['name']}' is not allowed for an exec plugin (it may "
                f"name a file or a program); allowed: {', '.join(sorted(SAFE_EXEC_ENV))}."
            )


def server_url(config: dict[str, Any], context: str) -> str:
    """The API server URL that ``context`` points at (of a kubeconfig already checked)."""
    ctx = next(c for c in config["contexts"] if c.get("name") == context)
    cluster_name = (ctx.get("context") or {}).get("cluster")
    for cluster in config["clusters"]:
        if cluster.get("name") == cluster_name:
            return str((cluster.get("cluster") or {}).get("server", ""))
    raise KubeconfigInvalid(
        f"context '{context}' names cluster '{cluster_name}', which the kubeconfig does not define."
    )


@dataclass(frozen=True)
class ApiServerCredentials:
    """What a client outside the kubernetes library needs to call the API server of one
    context: its URL, the CA to trust, and the user's credentials, decoded from the
    kubeconfig's data fields. ``repr`` never shows a secret."""

    server: str
    ca_pem: str | None = dataclasses.field(default=None, repr=False)
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    token: str | None = dataclasses.field(default=None, repr=False)
    client_cert_pem: str | None = dataclasses.field(default=None, repr=False)
    client_key_pem: str | None = dataclasses.field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = dataclasses.field(default=None, repr=False)
    impersonate: tuple[tuple[str, str], ...] = dataclasses.field(default=(), repr=False)
    """``Impersonate-*`` headers, as client-go sends them for ``as``, ``as-groups``..."""
    exec_plugin: ExecPluginSpec | None = dataclasses.field(default=None, repr=False)
    """The user's exec plugin (already allowed): its token or certificate is issued by
    running it, and again before it expires (``budcluster.adapters.exec_credential``)."""

    def auth_headers(self) -> tuple[tuple[str, str], ...]:
        """The headers that authenticate (and impersonate) each request, in order; a name
        may repeat (one ``Impersonate-Group`` per group, as client-go sends them)."""
        headers: list[tuple[str, str]] = []
        if self.token:
            headers.append(("Authorization", f"Bearer {self.token}"))
        elif self.basic_auth is not None:
            pair = f"{self.basic_auth[0]}:{self.basic_auth[1]}".encode()
            headers.append(("Authorization", "Basic " + base64.b64encode(pair).decode()))
        return (*headers, *self.impersonate)


def api_server_credentials(config: Mapping[str, Any], context: str) -> ApiServerCredentials:
    """The server, CA and credentials of ``context`` of a checked kubeconfig.

    An ``exec`` plugin passes only as :func:`check_kubeconfig` lets it (allowed by
    BUDCLUSTER_KUBECONFIG_EXEC_ALLOW, known flags, safe env), and is returned as data, not
    run: the caller runs it (``budcluster.adapters.exec_credential``), again before each
    token expires. ``proxy-url`` is refused: the benchmark client does not go through a
    proxy of the kubeconfig's choosing.
    """
    check_kubeconfig(config, context=context)
    ctx = next(c for c in config["contexts"] if c.get("name") == context)["context"]
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == cluster_name)
    user: Mapping[str, Any] = {}
    if user_name is not None:
        user = next(u for u in config["users"] if u["name"] == user_name)["user"] or {}
    where_c, where_u = f"clusters[{cluster_name}].cluster", f"users[{user_name}].user"
    if cluster.get("proxy-url"):
        raise KubeconfigInvalid(
            f"{where_c}.proxy-url: the benchmark client does not go through a proxy named by "
            "the kubeconfig; remove proxy-url from the credentials block's kubeconfig, or run "
            "the worker where the API server is reachable directly."
        )
    cert = _pem_field(user, "client-certificate-data", where_u)
    key = _pem_field(user, "client-key-data", where_u)
    if (cert is None) != (key is None):
        raise KubeconfigInvalid(
            f"{where_u}: client-certificate-data and client-key-data go together; give both "
            "or neither."
        )
    username, password = user.get("username"), user.get("password")
    token = user.get("token")
    return ApiServerCredentials(
        server=str(cluster["server"]).rstrip("/"),
        ca_pem=_pem_field(cluster, "certificate-authority-data", where_c),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=_optional_text(cluster, "tls-server-name", where_c),
        token=str(token) if token else None,
        client_cert_pem=cert,
        client_key_pem=key,
        basic_auth=(str(username), str(password)) if username and password else None,
        impersonate=_impersonation(user, where_u),
        exec_plugin=_exec_spec(f"{where_u}.exec", user["exec"], cluster)
        if "exec" in user
        else None,
    )


@dataclass(frozen=True)
class ExecPluginSpec:
    """A kubeconfig user's exec plugin, checked against the allow-list, as plain data (it
    crosses to the benchmark's worker processes). ``repr`` shows no variable's value."""

    where: str
    """The field it came from, e.g. ``users[eks].user.exec``, for error messages."""
    api_version: str
    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = dataclasses.field(default=(), repr=False)
    interactive_mode: str | None = None
    cluster_info: Mapping[str, Any] | None = dataclasses.field(default=None, repr=False)
    """``spec.cluster`` of the ExecCredential when ``provideClusterInfo`` is set."""

    def kubeconfig_entry(self) -> dict[str, Any]:
        """The ``exec`` mapping again, for :func:`check_exec_plugin`."""
        entry: dict[str, Any] = {
            "apiVersion": self.api_version,
            "command": self.command,
            "args": list(self.args),
            "env": [{"name": name, "value": value} for name, value in self.env],
        }
        if self.interactive_mode is not None:
            entry["interactiveMode"] = self.interactive_mode
        return entry


def check_exec_plugin(spec: ExecPluginSpec) -> None:
    """Raise :class:`KubeconfigInvalid` unless ``spec`` passes the allow-list now
    (``BUDCLUSTER_KUBECONFIG_EXEC_ALLOW``): whoever runs a plugin checks it first, whoever
    built the spec."""
    _check_exec(spec.where, spec.kubeconfig_entry(), get_settings().kubeconfig_exec_prefixes())


def _exec_spec(where: str, plugin: Mapping[str, Any], cluster: Mapping[str, Any]) -> ExecPluginSpec:
    # client-go's clientauthentication Cluster, whose JSON names are the kubeconfig's own
    # (server, tls-server-name, ...), plus the exec extension's config.
    cluster_info: dict[str, Any] | None = None
    if plugin.get("provideClusterInfo"):
        cluster_info = {
            name: cluster[name]
            for name in (
                "server",
                "tls-server-name",
                "insecure-skip-tls-verify",
                "certificate-authority-data",
            )
            if cluster.get(name) not in (None, "", False)
        }
        for extension in cluster.get("extensions") or []:
            if isinstance(extension, dict) and extension.get("name") == _EXEC_EXTENSION:
                cluster_info["config"] = extension.get("extension")
    return ExecPluginSpec(
        where=where,
        api_version=str(plugin["apiVersion"]),
        command=str(plugin["command"]),
        args=tuple(plugin.get("args") or ()),
        env=tuple((e["name"], e["value"]) for e in plugin.get("env") or ()),
        interactive_mode=plugin.get("interactiveMode"),
        cluster_info=cluster_info,
    )


def _pem_field(entry: Mapping[str, Any], name: str, where: str) -> str | None:
    value = entry.get(name)
    if value in (None, ""):
        return None
    try:
        decoded = base64.b64decode(str(value), validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise KubeconfigInvalid(f"{where}.{name} is not base64 of a PEM text; {_EXPORT}.") from None
    if "-----BEGIN " not in decoded:
        raise KubeconfigInvalid(f"{where}.{name} does not decode to a PEM block; {_EXPORT}.")
    return decoded


def _optional_text(entry: Mapping[str, Any], name: str, where: str) -> str | None:
    value = entry.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise KubeconfigInvalid(f"{where}.{name} must be a string.")
    return value


def _impersonation(user: Mapping[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for name, header in (("as", "Impersonate-User"), ("as-uid", "Impersonate-Uid")):
        value = _optional_text(user, name, where)
        if value is not None:
            headers.append((header, value))
    groups = user.get("as-groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise KubeconfigInvalid(f"{where}.as-groups must be a list of strings.")
    headers += [("Impersonate-Group", group) for group in groups]
    extra = user.get("as-user-extra") or {}
    if not isinstance(extra, dict):
        raise KubeconfigInvalid(f"{where}.as-user-extra must be a mapping of lists of strings.")
    for key, values in extra.items():
        items = values if isinstance(values, list) else [values]
        if not all(isinstance(v, str) for v in items):
            raise KubeconfigInvalid(f"{where}.as-user-extra.{key} must be a list of strings.")
        # client-go path-escapes the key, since header names cannot hold every character.
        headers += [(f"Impersonate-Extra-{quote(str(key), safe='')}", v) for v in items]
    return tuple(headers)
