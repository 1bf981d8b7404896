"""Collector loop of the node_info_collector DaemonSet (shipped in the chart).

Runs ``python -m budcluster.hardware.collector`` on this node and writes its NodeInventory
JSON into ConfigMap ``node-info-<node>`` (key ``inventory.json``), then again every
REFRESH_SECONDS. A failed round is logged and retried; the pod never exits on one.
"""

import json
import os
import subprocess
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException

NODE = os.environ["NODE_NAME"]
NAMESPACE = os.environ["POD_NAMESPACE"]
RELEASE = os.environ.get("RELEASE_NAME", "node-info-collector")
REFRESH_S = int(os.environ.get("REFRESH_SECONDS", "300"))
COLLECT_TIMEOUT_S = int(os.environ.get("COLLECT_TIMEOUT_SECONDS", "120"))
API_TIMEOUT_S = 30


def collect() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "budcluster.hardware.collector"],
        capture_output=True,
        text=True,
        timeout=COLLECT_TIMEOUT_S,
        check=True,
    )
    json.loads(done.stdout)  # never publish half a document
    return done.stdout


def publish(api: client.CoreV1Api, inventory: str) -> None:
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(
            name=f"node-info-{NODE}",
            labels={
                "app.kubernetes.io/name": "node-info-collector",
                "app.kubernetes.io/managed-by": "bud-serve-cluster",
                "budcluster.io/release": RELEASE,
                "budcluster.io/node": NODE[:63],
            },
        ),
        data={"inventory.json": inventory},
    )
    try:
        api.create_namespaced_config_map(NAMESPACE, body, _request_timeout=API_TIMEOUT_S)
    except ApiException as exc:
        if exc.status != 409:
            raise
        api.replace_namespaced_config_map(
            body.metadata.name, NAMESPACE, body, _request_timeout=API_TIMEOUT_S
        )


def main() -> None:
    config.load_incluster_config()
    api = client.CoreV1Api()
    while True:
        try:
            publish(api, collect())
            print(f"node-info-{NODE} refreshed", flush=True)
        except Exception as exc:  # one bad round must not stop the refresh loop
            print(f"node-info-{NODE} not refreshed: {type(exc).__name__}: {exc}", flush=True)
        time.sleep(REFRESH_S)


if __name__ == "__main__":
    main()
