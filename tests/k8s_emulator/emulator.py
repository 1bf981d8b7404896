"""Run the emulator on 127.0.0.1 in a background thread with its own event loop, and drive
it from tests: kubeconfig, fault switches, watch-history size, thread-safe inspection."""

from __future__ import annotations

import asyncio
import secrets
import ssl
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from tests.k8s_emulator.api_faults import ApiFault, FaultedRequest
from tests.k8s_emulator.cluster import Cluster, Timings
from tests.k8s_emulator.faults import Fault
from tests.k8s_emulator.node_lifecycle import lose_node
from tests.k8s_emulator.nodes import NodeSpec, default_nodes
from tests.k8s_emulator.selectors import parse_label_selector
from tests.k8s_emulator.server import ApiServer
from tests.k8s_emulator.store import DEFAULT_HISTORY_SIZE
from tests.k8s_emulator.traffic import ProxiedRequest, ServedRequest

T = TypeVar("T")
START_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 10.0


class Emulator:
    def __init__(
        self,
        cluster: Cluster,
        host: str,
        port: int,
        token: str | None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.cluster = cluster
        self.host = host
        self.port = port
        self.token = token
        self.ssl_context = ssl_context
        self.errors: list[str] = []  # controller tracebacks; the pytest fixture fails on any
        self._loop = asyncio.new_event_loop()
        self._server = ApiServer(cluster, token)
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="k8s-emulator", daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def flavour(self) -> str:
        return self.cluster.flavour

    # --- lifecycle ------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._server.stopping = asyncio.Event()
        self._runner = web.AppRunner(self._server.app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []
        if self.port == 0 and sockets:
            self.port = int(sockets[0].getsockname()[1])
        self._ticker = self._loop.create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        while True:
            try:
                self.cluster.tick()
            except Exception:
                self.errors.append(traceback.format_exc())
            await asyncio.sleep(self.cluster.timings.tick_s)

    def start(self) -> Emulator:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"the Kubernetes emulator did not start within {START_TIMEOUT_S}s")
        if self._startup_error is not None:
            raise RuntimeError(
                f"the Kubernetes emulator failed to start: {self._startup_error}"
            ) from self._startup_error
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            self._server.stopping.set()
            self._ticker.cancel()
            for watcher in list(self.cluster.store.watchers):
                watcher.queue.put_nowait(None)
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(CALL_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT_S)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- thread-safe access -----------------------------------------------------------

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the emulator's loop (where the store lives) and return its result."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(CALL_TIMEOUT_S)

    def objects(
        self, plural: str, group: str = "", namespace: str | None = None
    ) -> list[dict[str, Any]]:
        import copy

        return self.call(
            lambda: copy.deepcopy(self.cluster.store.list_kind(plural, group, namespace))
        )

    def proxy_log(self) -> list[ProxiedRequest]:
        """Every services/proxy request the API server answered, oldest first."""
        return self.call(lambda: list(self.cluster.proxy_log))

    def engine_log(self) -> list[ServedRequest]:
        """Every request a pod's simulated server answered, oldest first."""
        return self.call(lambda: list(self.cluster.engine_log))

    # --- switches -------------------------------------------------------------------

    def inject_fault(
        self,
        kind: str,
        selector: str | None = None,
        image: str | None = None,
        namespace: str | None = None,
        log: str | None = None,
    ) -> Fault:
        """Make matching pods fail: ImagePullBackOff, CrashLoopBackOff, OOMKilled or JobFailed."""
        extra = {"log": log} if log is not None else {}
        fault = Fault(kind, selector=selector, image=image, namespace=namespace, **extra)  # type: ignore[arg-type]
        return self.call(lambda: self.cluster.faults.add(fault))

    def clear_faults(self, fault: Fault | None = None) -> None:
        self.call(lambda: self.cluster.faults.remove(fault.id if fault else None))

    def set_pod_metric(
        self, namespace: str, metric: str, value: float, selector: str | None = None
    ) -> None:
        """TEST-ONLY: every Ready pod in ``namespace`` matching the label ``selector`` reports
        ``value`` for the custom metric ``metric`` to the HPA controller from now on."""
        requirements = parse_label_selector(selector)
        self.call(
            lambda: self.cluster.pod_metrics.set(
                namespace, metric, float(value), requirements, selector or ""
            )
        )

    def inject_api_fault(
        self,
        verb: str,
        path: str,
        *,
        status: int = 429,
        count: int = 1,
        retry_after_s: int | None = 1,
        watch: bool | None = None,
        run_first: bool = False,
    ) -> ApiFault:
        """Answer the next ``count`` requests of ``verb`` whose URL path fully matches the
        regular expression ``path`` with ``status`` (429 or 503) and ``Retry-After``."""
        fault = ApiFault(
            verb,
            path,
            status=status,
            count=count,
            retry_after_s=retry_after_s,
            watch=watch,
            run_first=run_first,
        )
        return self.call(lambda: self.cluster.api_faults.add(fault))

    def clear_api_faults(self) -> None:
        self.call(self.cluster.api_faults.remove)

    def api_fault_log(self) -> list[FaultedRequest]:
        """Every request the API fault switch answered, oldest first."""
        return self.call(lambda: list(self.cluster.api_faults.log))

    def expire_watches(self) -> int:
        """End every open watch with a 410 Expired ERROR event (history compacted)."""
        return self.call(self.cluster.store.expire_watches)

    def open_watches(self) -> int:
        return self.call(lambda: len(self.cluster.store.watchers))

    def lose_node(self, name: str, how: str = "NotReady") -> None:
        """Make node ``name`` NotReady (its pods evicted) or delete it (its pods collected)."""
        self.call(lambda: lose_node(self.cluster, name, how))

    def set_history_size(self, size: int) -> None:
        """Bound the watch event history; a watch from an older resourceVersion gets 410."""
        self.call(lambda: self.cluster.store.set_history_size(size))

    # --- client configuration -----------------------------------------------------------

    def kubeconfig_dict(self, context: str = "emulator") -> dict[str, Any]:
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": user}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": "default"},
                }
            ],
            "current-context": context,
            "preferences": {},
        }

    def write_kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump(self.kubeconfig_dict(), sort_keys=False))
        path.chmod(0o600)
        return path


def start_emulator(
    flavour: str = "kubernetes",
    nodes: list[NodeSpec] | None = None,
    timings: Timings | None = None,
    history_size: int = DEFAULT_HISTORY_SIZE,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = "auto",
    volumes_dir: Path | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Emulator:
    """Start an emulated cluster and return it serving; ``port=0`` picks a free port,
    ``token="auto"`` makes a random bearer token (``None`` accepts any client), an
    ``ssl_context`` serves HTTPS like a real API server (in-cluster clients only speak TLS),
    and ``volumes_dir`` keeps the PVs' files there (see ``Cluster``)."""
    cluster = Cluster(
        flavour=flavour,
        nodes=default_nodes() if nodes is None else nodes,
        timings=timings or Timings(),
        history_size=history_size,
        volumes_dir=volumes_dir,
    )
    bearer = secrets.token_urlsafe(24) if token == "auto" else token
    return Emulator(cluster, host, port, bearer, ssl_context).start()
