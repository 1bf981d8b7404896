"""The simulated inference container behind a runtime pod: answers HTTP the way vLLM's or
llama.cpp's OpenAI-compatible server would, derived only from the pod spec.

No model runs. What is simulated is what the pod spec decides: which port the engine
listens on (``--port``, else the engine's default), which model names it serves
(``--served-model-name`` for vLLM, ``--alias`` for llama.cpp, else the model path), and
the shape of the answers. A completion returns ``max_tokens`` tokens of filler text, so a
check through the Service proves the Service, the proxy path, the ports and the served
name the plan configured, not that a model generates.

``"stream": true`` is answered as both engines do, with server-sent events
(``text/event-stream``): one ``data:`` event per token, the last with ``finish_reason``,
then, when ``stream_options.include_usage`` asks for it, an event with empty ``choices``
and the ``usage``, then ``data: [DONE]``. The tokens are paced like a small model on an
idle GPU: the first after ``FIRST_TOKEN_S`` (prefill), each next one ``TOKEN_INTERVAL_S``
later; the API server's proxy (``server.py``) writes each event as it comes, so a client
measures that pacing plus the proxy's own latency.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
VLLM_DEFAULT_PORT = 8000
LLAMA_CPP_DEFAULT_PORT = 8080
VLLM_DEFAULT_MODEL = "facebook/opt-125m"  # what vLLM serves when given no model
VLLM_DEFAULT_MAX_TOKENS = 16  # OpenAI's and vLLM's default for /v1/completions
FILLER = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]
JSON = "application/json"
EVENT_STREAM = "text/event-stream"
FIRST_TOKEN_S = 0.040
"""When a streamed answer's first token leaves the engine, after the request arrived."""
TOKEN_INTERVAL_S = 0.010
"""The gap between two streamed tokens."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    content_type: str = JSON
    events: tuple[tuple[float, bytes], ...] | None = None
    """A streamed answer: each chunk and how long after the previous one (or after the
    request, for the first) the server writes it; ``body`` is then empty."""


def _json(status: int, body: Any) -> HttpAnswer:
    return HttpAnswer(status, json.dumps(body).encode())


def flag_values(args: Sequence[str], flags: Sequence[str]) -> list[str]:
    """Values of the last of ``flags`` given (argparse keeps the last): one, or several up to
    the next flag (nargs='+')."""
    for index in range(len(args) - 1, -1, -1):
        arg = args[index]
        for flag in flags:
            if arg.startswith(flag + "="):
                return [arg.split("=", 1)[1]]
            if arg == flag:
                values: list[str] = []
                for value in args[index + 1 :]:
                    if value.startswith("-"):
                        break
                    values.append(value)
                return values
    return []


def _llama_adapters(args: Sequence[str]) -> tuple[tuple[str, str, float], ...]:
    """llama.cpp's ``--lora FILE,...`` (scale 1) and ``--lora-scaled FILE:SCALE,...``, in
    the order given (common/arg.cpp appends both to one list on every use)."""
    found: list[tuple[str, str, float]] = []
    for index, arg in enumerate(args[:-1]):
        for item in args[index + 1].split(",") if arg in ("--lora", "--lora-scaled") else []:
            if arg == "--lora":
                found.append(("", item, 1.0))
            else:
                path, _, scale = item.rpartition(":")
                found.append(("", path, float(scale)))
    return tuple(found)


def _vllm_adapters(args: Sequence[str]) -> tuple[tuple[str, str, float], ...]:
    """vLLM's ``--lora-modules name=path ...`` (or the JSON form), with ``--enable-lora``."""
    if "--enable-lora" not in args:
        return ()
    modules: list[tuple[str, str, float]] = []
    for item in flag_values(args, ("--lora-modules",)):
        if item.startswith("{"):
            spec = json.loads(item)
            modules.append((str(spec["name"]), str(spec["path"]), 1.0))
        else:
            name, _, path = item.partition("=")
            modules.append((name, path, 1.0))
    return tuple(modules)


@dataclass(frozen=True)
class SimulatedEngine:
    """What a runtime container serves, read from its spec."""

    engine: str
    """"vllm" or "llama.cpp"."""
    port: int
    served_names: list[str]
    model_path: str
    adapters: tuple[tuple[str, str, float], ...] = ()
    """LoRA adapters in load order: (name, path, scale). vLLM's come from ``--lora-modules
    name=path`` with ``--enable-lora`` (scale unused); llama-server's from every
    ``--lora-scaled FILE:SCALE,...`` and ``--lora FILE,...`` (name unused: a request
    selects one by its position, ``"lora": [{"id": N, "scale": S}]``)."""

    @classmethod
    def of(cls, container: Obj) -> SimulatedEngine:
        args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
        image = str(container.get("image", "")).lower()
        llama = ("llama" in image and "vllm" not in image) or any(
            a in ("-m", "--alias", "-a") or a.endswith("llama-server") for a in args
        )
        ports = flag_values(args, ("--port",))
        if llama:
            model = (flag_values(args, ("-m", "--model")) or ["models/7B/ggml-model-f16.gguf"])[0]
            names = flag_values(args, ("--alias", "-a"))[:1] or [model]
            default_port = LLAMA_CPP_DEFAULT_PORT
        else:
            positional = (
                args[args.index("serve") + 1 : args.index("serve") + 2] if "serve" in args else []
            )
            model = (flag_values(args, ("--model",)) or positional or [VLLM_DEFAULT_MODEL])[0]
            names = flag_values(args, ("--served-model-name",)) or [model]
            default_port = VLLM_DEFAULT_PORT
        port = int(ports[0]) if ports and ports[0].isdigit() else default_port
        adapters = _llama_adapters(args) if llama else _vllm_adapters(args)
        return cls("llama.cpp" if llama else "vllm", port, names, model, adapters)

    @property
    def adapter_names(self) -> list[str]:
        return [name for name, _path, _scale in self.adapters] if self.engine == "vllm" else []

    def accepts_connections(self, ready: bool) -> bool:
        """vLLM opens its port only once the engine has loaded; llama-server listens at once
        and answers 503 while it loads."""
        return ready or self.engine == "llama.cpp"

    def answer(
        self,
        method: str,
        path: str,
        body: bytes,
        ready: bool,
        headers: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        """One HTTP exchange with the server; ``ready`` is the pod's readiness. The engines
        run without ``--api-key`` here, so no header changes an answer."""
        path = path.split("?", 1)[0].rstrip("/") or "/"
        if not ready:
            return _json(
                503,
                {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}},
            )
        routes = {
            "/health": ("GET", self._health),
            "/v1/models": ("GET", self._models),
            "/v1/completions": ("POST", self._completions),
            "/v1/chat/completions": ("POST", self._chat),
        }
        if self.engine == "llama.cpp":
            routes["/lora-adapters"] = ("GET", self._lora_adapters)
        if path not in routes:
            return self._error(404, "Not Found")
        wanted, handler = routes[path]
        if method != wanted:
            return self._error(405, "Method Not Allowed")
        return handler(body)

    # --- routes -------------------------------------------------------------------------------

    def _error(self, status: int, message: str, kind: str = "") -> HttpAnswer:
        if self.engine == "vllm":
            if kind:
                return _json(
                    status,
                    {
                        "object": "error",
                        "message": message,
                        "type": kind,
                        "param": None,
                        "code": status,
                    },
                )
            return _json(status, {"detail": message})  # FastAPI's own 404/405
        return _json(
            status,
            {
                "error": {
                    "code": status,
                    "message": message,
                    "type": kind or "invalid_request_error",
                }
            },
        )

    def _health(self, _body: bytes) -> HttpAnswer:
        if self.engine == "vllm":
            return HttpAnswer(200, b"", "text/plain")
        return _json(200, {"status": "ok"})

    def _models(self, _body: bytes) -> HttpAnswer:
        created = int(time.time())
        owner = "vllm" if self.engine == "vllm" else "llamacpp"
        data = [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": owner,
                "root": self.model_path,
                # vLLM's ModelCard names a LoRA module's base model; a base model has none.
                **({"parent": None} if self.engine == "vllm" else {}),
            }
            for name in self.served_names
        ]
        # vLLM lists each LoRA module after the base model, its root the adapter's path and
        # its parent the base model's name (serving_models.show_available_models).
        data += [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": owner,
                "root": path,
                "parent": self.served_names[0],
            }
            for name, path, _scale in self.adapters
            if self.engine == "vllm"
        ]
        return _json(200, {"object": "list", "data": data})

    def _lora_adapters(self, _body: bytes) -> HttpAnswer:
        """llama-server's ``GET /lora-adapters``: each loaded adapter by its position, with
        the path it was loaded from and its global scale."""
        return _json(
            200,
            [
                {"id": i, "path": path, "scale": scale, "task_name": "", "prompt_prefix": ""}
                for i, (_name, path, scale) in enumerate(self.adapters)
            ],
        )

    def _request(self, body: bytes) -> Obj | HttpAnswer:
        try:
            request = json.loads(body or b"{}")
        except ValueError as exc:
            return self._error(400, f"invalid JSON body: {exc}", "BadRequestError")
        if not isinstance(request, dict):
            return self._error(400, "the body must be a JSON object", "BadRequestError")
        model = request.get("model")
        if self.engine == "vllm" and model not in [*self.served_names, *self.adapter_names]:
            # vLLM checks the name (a LoRA module's name selects the adapter); llama-server
            # answers whatever model is asked for.
            return self._error(404, f"The model `{model}` does not exist.", "NotFoundError")
        if (
            self.engine == "llama.cpp"
            and "lora" in request
            and not isinstance(request["lora"], list)
        ):
            # llama-server's per-request adapter scales; ids it has not loaded are ignored.
            return self._error(
                400, "Error: 'lora' must be an array of objects with 'id' and 'scale' fields"
            )
        stream_options = request.get("stream_options")
        # vLLM refuses stream_options without stream (its request validator); llama-server
        # ignores them.
        if stream_options and not request.get("stream") and self.engine == "vllm":
            return self._error(
                400, "Stream options can only be defined when `stream=True`.", "BadRequestError"
            )
        if stream_options is not None and not isinstance(stream_options, dict):
            return self._error(400, "stream_options must be an object", "BadRequestError")
        max_tokens = request.get("max_tokens", VLLM_DEFAULT_MAX_TOKENS)
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return self._error(400, "max_tokens must be a positive integer", "BadRequestError")
        return request

    def _completion_body(self, request: Obj, prompt_tokens: int, obj: str) -> tuple[Obj, str]:
        tokens = int(request.get("max_tokens", VLLM_DEFAULT_MAX_TOKENS))
        text = "".join(" " + FILLER[i % len(FILLER)] for i in range(tokens))
        return (
            {
                "id": f"cmpl-{secrets.token_hex(12)}",
                "object": obj,
                "created": int(time.time()),
                "model": str(request.get("model") or self.served_names[0]),
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": tokens,
                    "total_tokens": prompt_tokens + tokens,
                },
            },
            text,
        )

    def _completions(self, body: bytes) -> HttpAnswer:
        request = self._request(body)
        if isinstance(request, HttpAnswer):
            return request
        prompt = request.get("prompt", "")
        answer, text = self._completion_body(
            request, len(str(prompt).split()) or 1, "text_completion"
        )
        if request.get("stream"):
            return self._stream(request, answer, text, chat=False)
        answer["choices"] = [
            {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": "length",
                "stop_reason": None,
            }
        ]
        return _json(200, answer)

    def _chat(self, body: bytes) -> HttpAnswer:
        request = self._request(body)
        if isinstance(request, HttpAnswer):
            return request
        messages = request.get("messages") or []
        words = sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))
        answer, text = self._completion_body(request, words or 1, "chat.completion")
        if request.get("stream"):
            return self._stream(request, answer, text, chat=True)
        answer["choices"] = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text.strip()},
                "logprobs": None,
                "finish_reason": "length",
            }
        ]
        return _json(200, answer)

    def _stream(self, request: Obj, answer: Obj, text: str, *, chat: bool) -> HttpAnswer:
        """The answer as server-sent events, one token each (see the module docstring)."""
        usage = answer.pop("usage")
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        answer["object"] = "chat.completion.chunk" if chat else "text_completion"
        tokens = [" " + word for word in text.split(" ")[1:]]
        events: list[tuple[float, bytes]] = []
        for index, token in enumerate(tokens):
            last = index == len(tokens) - 1
            if chat:
                delta: Obj = {"content": token.strip() if index == 0 else token}
                if index == 0:
                    delta["role"] = "assistant"
                choice: Obj = {"index": 0, "delta": delta, "logprobs": None}
            else:
                choice = {"index": 0, "text": token, "logprobs": None}
            choice["finish_reason"] = "length" if last else None
            chunk = {**answer, "choices": [choice]}
            if include_usage:
                chunk["usage"] = None  # vLLM's chunks carry it, empty, until the last event
            events.append((FIRST_TOKEN_S if index == 0 else TOKEN_INTERVAL_S, _event(chunk)))
        if include_usage:
            events.append((0.0, _event({**answer, "choices": [], "usage": usage})))
        events.append((0.0, b"data: [DONE]\n\n"))
        return HttpAnswer(200, b"", EVENT_STREAM, tuple(events))


def _event(payload: Obj) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
