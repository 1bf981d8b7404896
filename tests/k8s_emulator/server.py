"""The HTTP face of the emulator: discovery, CRUD, PATCH, watch, subresources, Tables,
content negotiation, and the ``/_emulator`` control API, on aiohttp."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from tests.k8s_emulator import protobuf, service_proxy
from tests.k8s_emulator.api_faults import ApiFault
from tests.k8s_emulator.cluster import Cluster
from tests.k8s_emulator.errors import ApiError, bad_request, not_found
from tests.k8s_emulator.faults import Fault
from tests.k8s_emulator.node_lifecycle import lose_node
from tests.k8s_emulator.paging import Page, page
from tests.k8s_emulator.resources import ResourceType
from tests.k8s_emulator.selectors import parse_field_selector, parse_label_selector
from tests.k8s_emulator.store import Watcher
from tests.k8s_emulator.tables import partial_metadata, to_table
from tests.k8s_emulator.traffic import ProxiedRequest

Obj = dict[str, Any]
KUBE_VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.4"}
JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
WATCH_DEFAULT_TIMEOUT_S = 1800.0


def _json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type=JSON)


def _error_response(error: ApiError) -> web.Response:
    return _json_response(error.status(), error.code)


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def _media_types(header: str) -> list[tuple[str, dict[str, str]]]:
    types = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        params = dict(p.split("=", 1) for p in pieces[1:] if "=" in p)
        types.append((pieces[0].lower(), params))
    return types


class ApiServer:
    def __init__(self, cluster: Cluster, token: str | None) -> None:
        self.cluster = cluster
        self.token = token
        self.stopping = asyncio.Event()
        self.app = web.Application(client_max_size=64 * 2**20)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    # --- dispatch -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            if not request.path.startswith("/_emulator"):
                fault = self.cluster.api_faults.take(
                    request.method, request.path, request.query.get("watch") in ("1", "true")
                )
                if fault is not None:
                    if fault.run_first:
                        with contextlib.suppress(ApiError):
                            await self._dispatch(request)  # it runs; its answer is lost
                    return web.Response(
                        text=json.dumps(fault.status_body()),
                        status=fault.status,
                        content_type=JSON,
                        headers=fault.headers(),
                    )
            return await self._dispatch(request)
        except ApiError as error:
            return _error_response(error)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] == ["_emulator"]:
            return await self._control(request, parts[1:])
        if parts in (["version"], ["healthz"], ["livez"], ["readyz"]):
            if parts == ["version"]:
                return _json_response(self._version())
            return web.Response(text="ok")
        self._authenticate(request)
        if parts[:2] == ["openapi", "v3"]:
            return _json_response(self._openapi_v3(parts[2:]))
        if parts == ["api"]:
            return _json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}
                    ],
                }
            )
        if parts == ["api", "v1"]:
            return _json_response(self._resource_list("", "v1"))
        if parts == ["apis"]:
            return _json_response(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [self._group(g) for g in self.cluster.registry.groups()],
                }
            )
        if len(parts) == 2 and parts[0] == "apis":
            if parts[1] not in self.cluster.registry.groups():
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json_response({"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1])})
        if len(parts) == 3 and parts[0] == "apis":
            if not self.cluster.registry.in_group_version(parts[1], parts[2]):
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json_response(self._resource_list(parts[1], parts[2]))
        if (
            len(parts) >= 7
            and parts[:3] == ["api", "v1", "namespaces"]
            and parts[4:7:2]
            == [
                "services",
                "proxy",
            ]
        ):
            return await self._service_proxy(request, parts[3], parts[5])
        target = self._target(parts)
        return await self._resource(request, target)

    def _authenticate(self, request: web.Request) -> None:
        # kubectl never sends a bearer token over plain http (client-go keeps credentials
        # to TLS), so a request without one is let in, like the old insecure port; a wrong
        # token still gets 401 so clients that do send one are checked.
        header = request.headers.get("Authorization")
        if self.token is None or header is None:
            return
        # The scheme is case-insensitive, as in the API server's bearer-token authenticator
        # (the Python client's in-cluster config sends "bearer <token>").
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or presented != self.token:
            raise ApiError(401, "Unauthorized", "Unauthorized")

    def _version(self) -> Obj:
        return {
            **KUBE_VERSION,
            "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
            "gitTreeState": "clean",
            "buildDate": "2024-12-10T11:36:53Z",
            "goVersion": "go1.22.9",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    # --- discovery ------------------------------------------------------------------

    def _group(self, group: str) -> Obj:
        versions = [
            {"groupVersion": f"{group}/{v}", "version": v}
            for v in self.cluster.registry.versions(group)
        ]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    def _resource_list(self, group: str, version: str) -> Obj:
        resources = []
        for rt in self.cluster.registry.in_group_version(group, version):
            entry: Obj = {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": list(rt.verbs),
            }
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            if rt.categories:
                entry["categories"] = list(rt.categories)
            resources.append(entry)
            if rt.status_subresource:
                resources.append(
                    {
                        "name": f"{rt.plural}/status",
                        "singularName": "",
                        "namespaced": rt.namespaced,
                        "kind": rt.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
            for sub in rt.extra_subresources:
                proxying = sub == "proxy"  # connect verbs, and its own options kind
                resources.append(
                    {
                        "name": f"{rt.plural}/{sub}",
                        "singularName": "",
                        "namespaced": rt.namespaced,
                        "kind": f"{rt.kind}ProxyOptions" if proxying else rt.kind,
                        "verbs": ["create", "delete", "get", "patch", "update"]
                        if proxying
                        else ["get"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _openapi_v3(self, gv_parts: list[str]) -> Obj:
        """Just enough OpenAPI v3 for kubectl: every PATCH operation declares the
        ``fieldValidation`` parameter, so kubectl leaves validation to the server instead of
        downloading schemas, and computes apply patches from its built-in types."""
        registry = self.cluster.registry
        versions = [("", "v1")] + [(g, v) for g in registry.groups() for v in registry.versions(g)]
        if not gv_parts:
            return {
                "paths": {
                    (f"apis/{g}/{v}" if g else "api/v1"): {
                        "serverRelativeURL": f"/openapi/v3/{'apis/' + g + '/' + v if g else 'api/v1'}?hash={KUBE_VERSION['gitVersion']}"
                    }
                    for g, v in versions
                }
            }
        group, version = (
            ("", "v1")
            if gv_parts == ["api", "v1"]
            else (gv_parts[1], gv_parts[2])
            if len(gv_parts) == 3 and gv_parts[0] == "apis"
            else ("?", "?")
        )
        types = registry.in_group_version(group, version)
        if not types:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        prefix = f"/apis/{group}/{version}" if group else "/api/v1"
        paths: Obj = {}
        for rt in types:
            scope = (
                f"{prefix}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
                if rt.namespaced
                else f"{prefix}/{rt.plural}/{{name}}"
            )
            paths[scope] = {
                "patch": {
                    "operationId": f"patch{rt.kind}",
                    "parameters": [
                        {
                            "name": "fieldValidation",
                            "in": "query",
                            "schema": {"type": "string", "uniqueItems": True},
                        },
                        {
                            "name": "fieldManager",
                            "in": "query",
                            "schema": {"type": "string", "uniqueItems": True},
                        },
                        {
                            "name": "force",
                            "in": "query",
                            "schema": {"type": "boolean", "uniqueItems": True},
                        },
                    ],
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": {
                        "group": rt.group,
                        "version": rt.version,
                        "kind": rt.kind,
                    },
                }
            }
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
            "paths": paths,
            "components": {"schemas": {}},
        }

    # --- resource paths -------------------------------------------------------------

    def _target(self, parts: list[str]) -> Target:
        unknown = ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise unknown
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise unknown
        rt = self.cluster.registry.lookup(group, version, rest[0])
        if rt is None or (namespace is not None and not rt.namespaced):
            raise unknown
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and not (
            (sub == "status" and rt.status_subresource) or sub in rt.extra_subresources
        ):
            raise unknown
        return Target(rt, namespace, name, sub)

    async def _resource(self, request: web.Request, target: Target) -> web.StreamResponse:
        method = request.method
        query = request.query
        dry_run = query.get("dryRun") == "All"
        store = self.cluster.store
        rt = target.rt
        if target.name is None:
            if method == "GET":
                if query.get("watch") in ("1", "true"):
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST":
                body = await self._body(request, rt)
                namespace = target.namespace if rt.namespaced else None
                created = store.create(rt, namespace, body, dry_run)
                return self._respond(request, rt, created, 201)
            if method == "DELETE":
                items = self._select(target, query)
                for item in items:
                    store.delete(
                        rt,
                        item["metadata"].get("namespace"),
                        item["metadata"]["name"],
                        query.get("propagationPolicy"),
                        dry_run,
                    )
                return _json_response(self._list_body(rt, items))
            raise ApiError(
                405,
                "MethodNotAllowed",
                f"the server does not allow this method on the requested resource ({method})",
            )
        if target.subresource == "log":
            return self._pod_log(request, target)
        if method == "GET":
            return self._respond(request, rt, store.get(rt, target.namespace, target.name))
        if method == "PUT":
            body = await self._body(request, rt)
            return self._respond(
                request,
                rt,
                store.replace(rt, target.namespace, target.name, body, target.subresource, dry_run),
            )
        if method == "PATCH":
            content_type = request.content_type
            raw = await request.text()
            try:
                patch = (
                    yaml.safe_load(raw)
                    if content_type == "application/apply-patch+yaml"
                    else json.loads(raw)
                )
            except (ValueError, yaml.YAMLError) as exc:
                raise bad_request(f"error decoding patch: {exc}") from exc
            if content_type == "application/apply-patch+yaml" and query.get("force") not in (
                None,
                "true",
                "false",
            ):
                raise bad_request("force: Invalid value: must be true or false")
            patched = store.patch(
                rt,
                target.namespace,
                target.name,
                content_type,
                patch,
                target.subresource,
                query.get("fieldManager"),
                dry_run,
            )
            return self._respond(request, rt, patched, 200)
        if method == "DELETE":
            propagation = query.get("propagationPolicy")
            if request.can_read_body:
                with contextlib.suppress(ValueError):
                    options = json.loads(await request.text() or "{}")
                    propagation = options.get("propagationPolicy") or propagation
            return self._respond(
                request, rt, store.delete(rt, target.namespace, target.name, propagation, dry_run)
            )
        raise ApiError(
            405,
            "MethodNotAllowed",
            f"the server does not allow this method on the requested resource ({method})",
        )

    async def _body(self, request: web.Request, rt: ResourceType) -> Obj:
        content_type = request.content_type
        if content_type.startswith(PROTOBUF):
            # Typed Go clients (Helm's release storage) write Secrets as protobuf; kinds
            # without a decoder get 415, like a server that does not speak protobuf for them.
            return protobuf.decode(await request.read(), rt.api_version, rt.kind)
        raw = await request.text()
        try:
            if content_type in ("application/yaml", "application/apply-patch+yaml"):
                body = yaml.safe_load(raw)
            elif content_type in (JSON, "", "application/octet-stream", "text/plain"):
                body = json.loads(raw)
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type})",
                )
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the request body could not be decoded: {exc}") from exc
        if not isinstance(body, dict):
            raise bad_request("the request body must be an object")
        return body

    def _accept(self, request: web.Request) -> tuple[str, dict[str, str]]:
        """(kind of rendering, params): "json", "table" or "meta"; 406 when only protobuf."""
        header = request.headers.get("Accept", "*/*") or "*/*"
        types = _media_types(header)
        for media, params in types:
            if media in (JSON, "*/*", "application/*") or media == "application/yaml":
                if params.get("as") == "Table":
                    return "table", params
                if params.get("as", "").startswith("PartialObjectMetadata"):
                    return "meta", params
                return "json", params
        if all(media.startswith(PROTOBUF) for media, _ in types):
            raise ApiError(
                406,
                "NotAcceptable",
                "only the following media types are accepted: application/json, application/yaml",
            )
        return "json", {}

    def _respond(
        self, request: web.Request, rt: ResourceType, obj: Obj, status: int = 200
    ) -> web.Response:
        kind, _params = self._accept(request)
        if kind == "table":
            table = to_table(
                rt,
                [obj],
                obj["metadata"].get("resourceVersion", ""),
                request.query.get("includeObject", "Metadata"),
            )
            return _json_response(table, status)
        if kind == "meta":
            return _json_response(partial_metadata(obj), status)
        return _json_response(obj, status)

    def _select(self, target: Target, query: Any) -> list[Obj]:
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(target.rt.plural, query.get("fieldSelector"))
        namespace = target.namespace if target.rt.namespaced else None
        return self.cluster.store.list(target.rt, namespace, labels, fields)

    def _list_body(self, rt: ResourceType, items: list[Obj], chunk: Page | None = None) -> Obj:
        stripped = []
        for item in items:
            # Items of built-in lists carry no kind/apiVersion on the wire.
            clean = {k: v for k, v in item.items() if k not in ("kind", "apiVersion")}
            stripped.append(clean)
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": _list_metadata(chunk, self.cluster.store.rv),
            "items": stripped,
        }

    def _list(self, request: web.Request, target: Target) -> web.Response:
        store = self.cluster.store
        chunk = page(
            self._select(target, request.query), request.query, store.rv, store.events_since
        )
        items = chunk.items
        kind, _ = self._accept(request)
        rv = str(chunk.resource_version)
        if kind == "table":
            return _json_response(
                to_table(target.rt, items, rv, request.query.get("includeObject", "Metadata"))
            )
        if kind == "meta":
            return _json_response(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": _list_metadata(chunk, store.rv),
                    "items": [partial_metadata(i) for i in items],
                }
            )
        return _json_response(self._list_body(target.rt, items, chunk))

    # --- watch ----------------------------------------------------------------------

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        query = request.query
        store = self.cluster.store
        watcher = Watcher(
            target.rt,
            target.namespace if target.rt.namespaced else None,
            parse_label_selector(query.get("labelSelector")),
            parse_field_selector(target.rt.plural, query.get("fieldSelector")),
        )
        rv_text = query.get("resourceVersion") or ""
        watcher.last_rv = int(rv_text) if rv_text.isdigit() and rv_text != "0" else store.rv
        table, _ = self._accept(request)
        initial: list[tuple[str, Obj]] = []
        error: ApiError | None = None
        send_initial = query.get("sendInitialEvents") == "true"
        if rv_text in ("", "0") or send_initial:
            # A plain watch without a resourceVersion starts with the current state, and so
            # does a WatchList request (sendInitialEvents), which ends it with a bookmark.
            initial = [("ADDED", o) for o in self._select(target, query)]
        else:
            try:
                since = store.events_since(int(rv_text))
            except ValueError as exc:
                raise bad_request(f"invalid resourceVersion {rv_text!r}") from exc
            except ApiError as exc:
                error = exc
                since = []
            initial = [(e.type, e.obj) for e in since if watcher.wants(e)]
        store.watchers.add(watcher)
        response = web.StreamResponse(
            headers={"Content-Type": JSON, "Transfer-Encoding": "chunked"}
        )
        try:
            await response.prepare(request)

            async def send(type_: str, obj: Obj) -> None:
                if table == "table":
                    obj = to_table(
                        target.rt,
                        [obj],
                        obj["metadata"].get("resourceVersion", ""),
                        query.get("includeObject", "Object"),
                    )
                await response.write((json.dumps({"type": type_, "object": obj}) + "\n").encode())
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    watcher.last_rv = int(obj["metadata"]["resourceVersion"])

            if error is not None:
                # The real server answers 200 and then an ERROR event carrying the Status.
                await response.write(
                    (json.dumps({"type": "ERROR", "object": error.status()}) + "\n").encode()
                )
                return response
            for type_, obj in initial:
                await send(type_, obj)
            if send_initial:
                bookmark = {
                    "kind": target.rt.kind,
                    "apiVersion": target.rt.api_version,
                    "metadata": {
                        "resourceVersion": str(store.rv),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }
                await response.write(
                    (json.dumps({"type": "BOOKMARK", "object": bookmark}) + "\n").encode()
                )
            timeout = float(query.get("timeoutSeconds") or WATCH_DEFAULT_TIMEOUT_S)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not self.stopping.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), min(remaining, 0.5))
                except TimeoutError:
                    continue
                if event is None:
                    break
                if isinstance(event, ApiError):
                    # What the real server sends when the watch's resourceVersion was
                    # compacted away under it: 200 already went out, so an ERROR event.
                    await response.write(
                        (json.dumps({"type": "ERROR", "object": event.status()}) + "\n").encode()
                    )
                    break
                await send(event.type, event.obj)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            store.watchers.discard(watcher)
        return response

    # --- services/proxy -------------------------------------------------------------

    async def _service_proxy(
        self, request: web.Request, namespace: str, service_id: str
    ) -> web.StreamResponse:
        prefix = f"/api/v1/namespaces/{namespace}/services/{service_id}/proxy"
        path = request.path[len(prefix) :] or "/"
        if request.query_string:
            path += "?" + request.query_string
        started = time.monotonic()

        def log(status: int, events: int = 0) -> None:
            self.cluster.proxy_log.append(
                ProxiedRequest(
                    namespace,
                    service_id,
                    request.method,
                    path,
                    status,
                    events,
                    started,
                    time.monotonic(),
                )
            )

        body = await request.read() if request.can_read_body else b""
        try:
            answer = service_proxy.proxy(
                self.cluster, namespace, service_id, request.method, path, body, request.headers
            )
        except ApiError as error:
            log(error.code)
            raise
        if answer.events is None:
            # The backend's answer goes back as it is: its status, its body, its content type.
            log(answer.status)
            return web.Response(
                body=answer.body,
                status=answer.status,
                headers={"Content-Type": answer.content_type},
            )
        # A stream goes back as the backend writes it. Go's ReverseProxy, which the real
        # proxy runs, flushes each write of a text/event-stream answer at once (its
        # flushInterval is -1 for one, whatever the handler's 200 ms default), and answers
        # with chunked encoding since the backend gives no length; aiohttp's write() sends
        # each chunk straight to the socket, so a client sees the engine's own pacing.
        response = web.StreamResponse(
            status=answer.status, headers={"Content-Type": answer.content_type}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        written = 0
        try:
            for delay, chunk in answer.events:
                if delay > 0:
                    await asyncio.sleep(delay)
                await response.write(chunk)
                written += 1
            await response.write_eof()
        finally:
            log(answer.status, written)
        return response

    # --- pods/log -------------------------------------------------------------------

    def _pod_log(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        pod = self.cluster.store.get(target.rt, target.namespace, target.name)
        containers = [c["name"] for c in pod["spec"].get("containers") or []]
        container = request.query.get("container")
        if container is None:
            if len(containers) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {target.name}, choose one of: [{' '.join(containers)}]"
                )
            container = containers[0]
        if container not in containers:
            raise bad_request(f"container {container} is not valid for pod {target.name}")
        previous = request.query.get("previous") in ("true", "1")
        lines = self.cluster.kubelet.logs(pod, container, previous)
        if not lines and not previous:
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (status.get("state") or {}).get("waiting")
                if (
                    status["name"] == container
                    and waiting
                    and waiting.get("reason") in ("ImagePullBackOff", "ErrImagePull")
                ):
                    raise bad_request(
                        f'container "{container}" in pod "{target.name}" is waiting to start: trying and failing to pull image'
                    )
            raise bad_request(
                f'container "{container}" in pod "{target.name}" is waiting to start: ContainerCreating'
            )
        if previous and not lines:
            raise bad_request(
                f'previous terminated container "{container}" in pod "{target.name}" not found'
            )
        tail = request.query.get("tailLines")
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        text = "".join(line + "\n" for line in lines)
        return web.Response(text=text, content_type="text/plain")

    # --- control API ----------------------------------------------------------------

    async def _control_api_faults(self, request: web.Request, parts: list[str]) -> web.Response:
        """``/_emulator/api-faults``: GET lists the rules (and what they answered), POST adds
        one (``verb``, ``path``, ``status``, ``count``, ``retry_after_s``, ``watch``), DELETE
        clears all, ``DELETE /_emulator/api-faults/<id>`` one."""
        book = self.cluster.api_faults
        if not parts and request.method == "GET":
            return _json_response(
                {
                    "faults": [f.as_dict() for f in book.faults],
                    "answered": [vars(r) for r in book.log],
                }
            )
        if not parts and request.method == "POST":
            body = await request.json()
            keys = ("verb", "path", "status", "count", "retry_after_s", "watch", "run_first")
            try:
                fault = book.add(ApiFault(**{k: body[k] for k in keys if k in body}))
            except (TypeError, ValueError) as exc:
                raise bad_request(f"api fault: {exc}") from exc
            return _json_response(fault.as_dict(), 201)
        if not parts and request.method == "DELETE":
            book.remove()
            return _json_response({"cleared": True})
        if len(parts) == 1 and parts[0].isdigit() and request.method == "DELETE":
            book.remove(int(parts[0]))
            return _json_response({"cleared": int(parts[0])})
        raise bad_request("api-faults: GET, POST or DELETE /_emulator/api-faults[/<id>]")

    async def _control(self, request: web.Request, parts: list[str]) -> web.Response:
        faults = self.cluster.faults
        if parts == ["faults"]:
            if request.method == "GET":
                return _json_response([f.as_dict() for f in faults.faults])
            if request.method == "POST":
                body = await request.json()
                try:
                    fault = faults.add(
                        Fault(
                            **{
                                k: body[k]
                                for k in ("kind", "selector", "image", "namespace", "log")
                                if k in body
                            }
                        )
                    )
                except (TypeError, ValueError) as exc:
                    raise bad_request(f"fault: {exc}") from exc
                return _json_response(fault.as_dict(), 201)
            if request.method == "DELETE":
                faults.remove()
                return _json_response({"cleared": True})
        if len(parts) == 2 and parts[0] == "faults" and request.method == "DELETE":
            faults.remove(int(parts[1]))
            return _json_response({"cleared": int(parts[1])})
        if parts[:1] == ["api-faults"]:
            return await self._control_api_faults(request, parts[1:])
        if parts == ["watches", "expire"] and request.method == "POST":
            return _json_response({"ended": self.cluster.store.expire_watches()})
        if len(parts) == 3 and parts[0] == "nodes" and parts[2] == "lose":
            if request.method != "POST":
                raise ApiError(405, "MethodNotAllowed", "POST /_emulator/nodes/<name>/lose")
            body = await request.json() if request.can_read_body else {}
            try:
                lost = lose_node(self.cluster, parts[1], str(body.get("how", "NotReady")))
            except ValueError as exc:
                raise bad_request(f"lose node: {exc}") from exc
            except KeyError as exc:
                raise ApiError(404, "NotFound", str(exc.args[0])) from exc
            return _json_response({"node": lost.name, "how": lost.how}, 201)
        if parts == ["history"] and request.method in ("PUT", "POST"):
            body = await request.json()
            size = body.get("size")
            if not isinstance(size, int) or size < 1:
                raise bad_request("history: 'size' must be a positive integer")
            self.cluster.store.set_history_size(size)
            return _json_response({"size": size, "compacted_rv": self.cluster.store.compacted_rv})
        if parts == ["metrics"] and request.method in ("PUT", "POST"):
            # TEST-ONLY: what pods report to the HPA controller (see autoscaler.PodMetrics).
            body = await request.json()
            try:
                value = float(body["value"])
                requirements = parse_label_selector(body.get("selector"))
                self.cluster.pod_metrics.set(
                    str(body["namespace"]),
                    str(body["metric"]),
                    value,
                    requirements,
                    body.get("selector") or "",
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise bad_request(
                    f"metrics: give namespace, metric, value and optionally selector ({exc})"
                ) from exc
            return _json_response(body, 201)
        if parts == ["state"]:
            return _json_response(
                {
                    "resourceVersion": self.cluster.store.rv,
                    "flavour": self.cluster.flavour,
                    "nodes": list(self.cluster.node_specs),
                }
            )
        raise not_found(self.cluster.registry.get("pods"), "/_emulator/" + "/".join(parts))


def _list_metadata(chunk: Page | None, current_rv: int) -> dict[str, str]:
    if chunk is None:
        return {"resourceVersion": str(current_rv)}
    meta = {"resourceVersion": str(chunk.resource_version)}
    if chunk.continue_token:
        meta["continue"] = chunk.continue_token
    return meta
