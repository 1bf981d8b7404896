"""The simulated LiteLLM proxy container: answers HTTP the way ``litellm --config`` does,
derived only from the pod spec and the config file its ConfigMap volume held when the
container started.

What is simulated, from LiteLLM's proxy (``litellm/proxy``):
- ``--port`` (default 4000) and ``--config``; the config's ``model_list`` (``model_name``,
  ``litellm_params.model``/``api_base``) and ``general_settings.master_key``;
- ``GET /health/liveliness`` and ``/health/liveness``: 200 ``"I'm alive!"``, no auth;
- ``GET /health/readiness``: 200 ``{"status": "healthy", "db": "Not connected", ...}``;
- ``GET /v1/models`` and ``/models``: the distinct ``model_name`` values in config order,
  ``{"data": [{"id", "object": "model", "created": 1677610602, "owned_by": "openai"}],
  "object": "list"}``;
- ``POST /v1/completions``, ``/completions``, ``/v1/chat/completions``, ``/chat/completions``:
  an unknown model is 400 ``Invalid model name passed in model=...``; otherwise one of the
  model's deployments is picked at random (``simple-shuffle``) and, for an ``openai/<name>``
  model, the request goes to ``<api_base>/completions`` (or ``/chat/completions``) with
  ``model`` set to ``<name>``, through the emulator's in-cluster Service resolution. A 200
  comes back as the backend sent it; an error status comes back with LiteLLM's error shape
  (``litellm.NotFoundError: OpenAIException - ...``); a connection that fails is 500
  ``litellm.APIConnectionError``.
- ``general_settings.master_key``: a literal, or ``os.environ/<NAME>`` read from the
  container's environment as the kubelet built it at start (the chart's
  ``LITELLM_MASTER_KEY`` from a ``secretKeyRef``); an unset variable leaves the proxy
  without a key, as LiteLLM's ``get_secret`` does. With a key, every route but the health
  probes asks for it (``user_api_key_auth``, no database): the key is taken from
  ``x-litellm-api-key`` (which supersedes ``Authorization``; ``Bearer ``/``Basic `` prefix
  optional), else ``Authorization`` (``Bearer ``/``Basic `` prefix required), else ``API-Key``,
  ``x-api-key``, ``x-goog-api-key``, ``Ocp-Apim-Subscription-Key``. None: 401
  ``Authentication Error, No api key passed in.``; an ``Authorization`` without the prefix:
  401 ``Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.``;
  the master key: the route answers; any other key falls through to the virtual-key lookup,
  which without a database is 400 ``No connected db.`` (type ``no_db_connection``).

Not simulated: retries, fallbacks, streaming, spend tracking, the admin UI, other providers
than ``openai/`` (400 ``LLM Provider NOT provided``), and config reloads (LiteLLM reads its
config once at start; the chart rolls the pods when it changes).
"""

from __future__ import annotations

import json
import random
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.k8s_emulator.runtime_http import JSON, HttpAnswer, flag_values

LITELLM_DEFAULT_PORT = 4000
_ENV_REFERENCE = "os.environ/"
_PROVIDER_KEY_HEADERS = ("api-key", "x-api-key", "x-goog-api-key", "ocp-apim-subscription-key")
"""Azure's, Anthropic's, Google AI Studio's and Azure APIM's key headers, in the order
``get_api_key`` tries them after ``Authorization``."""
MODELS_CREATED = 1677610602  # the fixed "created" LiteLLM's /v1/models reports
Forward = Callable[[str, str, bytes], HttpAnswer]
"""(url, method, body) -> the answer of whatever listens there; raises ConnectionError."""
_ERROR_NAMES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    408: "Timeout",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
    503: "ServiceUnavailableError",
}


def is_litellm(container: Mapping[str, Any]) -> bool:
    """A LiteLLM proxy image (``ghcr.io/berriai/litellm``, ``litellm/litellm``...)."""
    return "litellm" in str(container.get("image", "")).lower()


def _json(status: int, body: Any) -> HttpAnswer:
    return HttpAnswer(status, json.dumps(body).encode(), JSON)


def _proxy_error(
    status: int, message: str, kind: str | None = "None", param: str | None = "None"
) -> HttpAnswer:
    """LiteLLM's ProxyException body."""
    return _json(
        status,
        {"error": {"message": message, "type": kind, "param": param, "code": str(status)}},
    )


def _master_key(setting: Any, env: Mapping[str, str]) -> str | None:
    """``general_settings.master_key`` as the proxy resolves it at start."""
    if not setting:
        return None
    text = str(setting)
    if text.startswith(_ENV_REFERENCE):
        return env.get(text[len(_ENV_REFERENCE) :]) or None
    return text


def _without_scheme(value: str) -> str:
    """``_get_bearer_token_or_received_api_key``: the value, less a Bearer/Basic prefix."""
    for prefix in ("Bearer ", "Basic ", "bearer "):
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries, as ``get_api_key`` picks it: None when it carries none,
    "" when ``Authorization`` lacks the Bearer/Basic prefix."""
    custom = headers.get("x-litellm-api-key")
    if custom is not None:
        return _without_scheme(custom)
    authorization = headers.get("authorization")
    if authorization:
        stripped = _without_scheme(authorization)
        return "" if stripped == authorization else stripped
    for name in _PROVIDER_KEY_HEADERS:
        if name in headers:
            return headers[name]
    return None


@dataclass(frozen=True)
class SimulatedLiteLLM:
    port: int
    model_list: list[dict[str, Any]]
    master_key: str | None = field(repr=False)
    version: str
    forward: Forward = field(compare=False, repr=False)

    @classmethod
    def of(
        cls,
        container: Mapping[str, Any],
        files: Mapping[str, str],
        forward: Forward,
        env: Mapping[str, str] | None = None,
    ) -> SimulatedLiteLLM:
        """From the container's args, the files mounted into it and the environment it
        started with."""
        args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
        ports = flag_values(args, ("--port",))
        config_path = (flag_values(args, ("--config", "-c")) or [""])[0]
        config: Any = yaml.safe_load(files.get(config_path, "")) if config_path else None
        config = config if isinstance(config, dict) else {}
        settings = config.get("general_settings") or {}
        tag = re.search(r"v(\d+\.\d+\.\d+)", str(container.get("image", "")))
        return cls(
            port=int(ports[0]) if ports and ports[0].isdigit() else LITELLM_DEFAULT_PORT,
            model_list=[m for m in config.get("model_list") or [] if isinstance(m, dict)],
            master_key=_master_key(settings.get("master_key"), env or {}),
            version=tag.group(1) if tag else "unknown",
            forward=forward,
        )

    @property
    def model_names(self) -> list[str]:
        return list(dict.fromkeys(str(m.get("model_name")) for m in self.model_list))

    def accepts_connections(self, ready: bool) -> bool:
        """Uvicorn listens once the proxy has loaded its config and started."""
        return ready

    def answer(
        self,
        method: str,
        path: str,
        body: bytes,
        ready: bool,
        headers: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        """One HTTP exchange; ``headers`` are the request's, names lower-cased."""
        path = path.split("?", 1)[0].rstrip("/") or "/"
        routes: dict[str, tuple[str, Callable[[str, bytes], HttpAnswer], bool]] = {
            "/health/liveliness": ("GET", self._alive, False),
            "/health/liveness": ("GET", self._alive, False),
            "/health/readiness": ("GET", self._readiness, False),
            "/v1/models": ("GET", self._models, True),
            "/models": ("GET", self._models, True),
            "/v1/completions": ("POST", self._completions, True),
            "/completions": ("POST", self._completions, True),
            "/v1/chat/completions": ("POST", self._completions, True),
            "/chat/completions": ("POST", self._completions, True),
        }
        if path not in routes:
            return _json(404, {"detail": "Not Found"})
        wanted, handler, protected = routes[path]
        if method != wanted:
            return _json(405, {"detail": "Method Not Allowed"})
        if protected and self.master_key is not None:
            refused = self._authenticate({k.lower(): v for k, v in (headers or {}).items()})
            if refused is not None:
                return refused
        return handler(path, body)

    def _authenticate(self, headers: Mapping[str, str]) -> HttpAnswer | None:
        """None when the request carries the master key; else LiteLLM's refusal."""
        assert self.master_key is not None
        key = presented_key(headers)
        if key is None:
            return _proxy_error(401, "Authentication Error, No api key passed in.", "auth_error")
        if key == "":
            return _proxy_error(
                401,
                "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` "
                "prefix.",
                "auth_error",
            )
        if secrets.compare_digest(key.encode(), self.master_key.encode()):
            return None
        return _proxy_error(400, "No connected db.", "no_db_connection", None)

    # --- routes -------------------------------------------------------------------------------

    def _alive(self, _path: str, _body: bytes) -> HttpAnswer:
        return _json(200, "I'm alive!")

    def _readiness(self, _path: str, _body: bytes) -> HttpAnswer:
        return _json(
            200,
            {
                "status": "healthy",
                "db": "Not connected",
                "cache": None,
                "litellm_version": self.version,
                "success_callbacks": [],
            },
        )

    def _models(self, _path: str, _body: bytes) -> HttpAnswer:
        data = [
            {"id": name, "object": "model", "created": MODELS_CREATED, "owned_by": "openai"}
            for name in self.model_names
        ]
        return _json(200, {"data": data, "object": "list"})

    def _completions(self, path: str, body: bytes) -> HttpAnswer:
        route = "/chat/completions" if path.endswith("/chat/completions") else "/completions"
        try:
            request = json.loads(body or b"{}")
        except ValueError as exc:
            return _proxy_error(400, f"Invalid JSON payload: {exc}")
        if not isinstance(request, dict):
            return _proxy_error(400, "Invalid JSON payload: the body must be an object")
        group = str(request.get("model", ""))
        deployments = [m for m in self.model_list if str(m.get("model_name")) == group]
        if not deployments:
            return _proxy_error(
                400,
                f"{route}: Invalid model name passed in model={group}. Call `/v1/models` to "
                "view available models for your key.",
            )
        params = random.choice(deployments).get("litellm_params") or {}
        provider, _, backend_model = str(params.get("model", "")).partition("/")
        if provider != "openai" or not backend_model:
            return _proxy_error(
                400,
                "litellm.BadRequestError: LLM Provider NOT provided. Pass in the LLM provider "
                f"you are trying to call. You passed model={params.get('model')}",
            )
        url = str(params.get("api_base", "https://api.openai.com/v1")).rstrip("/") + route
        suffix = f"Received Model Group={group}\nAvailable Model Group Fallbacks=None"
        try:
            answer = self.forward(
                url, "POST", json.dumps({**request, "model": backend_model}).encode()
            )
        except ConnectionError as exc:
            return _proxy_error(
                500, f"litellm.APIConnectionError: OpenAIException - {exc}. {suffix}", None
            )
        if answer.status == 200:
            return answer
        name = _ERROR_NAMES.get(answer.status, "APIError")
        text = answer.body.decode("utf-8", "replace")
        return _proxy_error(
            answer.status, f"litellm.{name}: OpenAIException - {text}. {suffix}", None
        )
