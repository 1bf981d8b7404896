"""Simulated kube-controller-manager: namespaces, Deployments, ReplicaSets, DaemonSets,
Jobs, PVC binding, and the scheduler's binding step. Each runs once per emulator tick and
writes only when something changed."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator import ids
from tests.k8s_emulator.admission import template_hash
from tests.k8s_emulator.clone import clone
from tests.k8s_emulator.errors import ApiError
from tests.k8s_emulator.events import record_event
from tests.k8s_emulator.scheduler import (
    TERMINAL,
    bound_pods_by_node,
    choose_node,
    matches_node_affinity,
    untolerated_taint,
)
from tests.k8s_emulator.selectors import labels_match, selector_from_object
from tests.k8s_emulator.store import now_iso

if TYPE_CHECKING:
    from tests.k8s_emulator.cluster import Cluster

Obj = dict[str, Any]


def _suffix() -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return ids.choice(alphabet, 5)


def owner_ref(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(objs: list[Obj], owner: Obj) -> list[Obj]:
    uid = owner["metadata"]["uid"]
    return [
        o
        for o in objs
        if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])
    ]


def is_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def set_condition(
    conditions: list[Obj], type_: str, status: str, reason: str, message: str
) -> list[Obj]:
    """Replace one condition, keeping lastTransitionTime when the status did not change."""
    now = now_iso()
    old = next((c for c in conditions if c.get("type") == type_), None)
    new = {
        "type": type_,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }
    if old is not None:
        if old.get("status") == status:
            new["lastTransitionTime"] = old.get("lastTransitionTime", now)
        if (
            old.get("status") == status
            and old.get("reason") == reason
            and old.get("message") == message
        ):
            new["lastUpdateTime"] = old.get("lastUpdateTime", now)
    result = [c for c in conditions if c.get("type") != type_]
    result.append(new)
    return result


def _pod_from_template(
    cluster: Cluster, owner: Obj, template: Obj, extra_labels: dict[str, str]
) -> Obj:
    meta = template.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{owner['metadata']['name']}-{_suffix()}",
            "generateName": f"{owner['metadata']['name']}-",
            "namespace": owner["metadata"]["namespace"],
            "labels": {**(meta.get("labels") or {}), **extra_labels},
            "annotations": dict(meta.get("annotations") or {}),
            "ownerReferences": [owner_ref(owner)],
        },
        "spec": clone(template.get("spec") or {}),
    }


def _create(cluster: Cluster, plural: str, group: str, obj: Obj) -> Obj | None:
    try:
        return cluster.store.create(
            cluster.registry.get(plural, group), obj["metadata"]["namespace"], obj
        )
    except ApiError:
        return None  # namespace terminating or a name clash; the next tick tries again


# --- namespaces -------------------------------------------------------------------------


def reconcile_namespaces(cluster: Cluster) -> None:
    store = cluster.store
    ns_rt = cluster.registry.get("namespaces")
    for ns in list(store.list(ns_rt)):
        name = ns["metadata"]["name"]
        if ns["metadata"].get("deletionTimestamp"):
            # The real namespace controller takes a moment; clients (kubectl delete -f)
            # still find and delete the namespace's objects meanwhile.
            since = cluster.namespace_terminating.setdefault(
                ns["metadata"]["uid"], time.monotonic()
            )
            if time.monotonic() - since < cluster.timings.namespace_finalize_s:
                continue
            for key, obj in list(store.objects.items()):
                if key[2] == name and cluster.registry.get(key[1], key[0]).namespaced:
                    store.remove(cluster.registry.get(key[1], key[0]), obj)
            store.remove(ns_rt, ns)
            continue
        if store.find(cluster.registry.get("serviceaccounts"), name, "default") is None:
            _create(
                cluster,
                "serviceaccounts",
                "",
                {"metadata": {"name": "default", "namespace": name}},
            )


# --- Deployments and ReplicaSets ------------------------------------------------------


def _max_unavailable(spec: Obj) -> int:
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type") != "RollingUpdate":
        return 0
    value = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return math.floor(replicas * int(value[:-1]) / 100)
    return int(value)


def reconcile_deployments(cluster: Cluster) -> None:
    store = cluster.store
    rs_rt = cluster.registry.get("replicasets", "apps")
    dep_rt = cluster.registry.get("deployments", "apps")
    for dep in store.list(dep_rt):
        spec = dep["spec"]
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        hash_ = template_hash(template)
        namespace = dep["metadata"]["namespace"]
        rss = owned_by(store.list(rs_rt, namespace), dep)
        new_rs = next(
            (
                rs
                for rs in rss
                if rs["metadata"].get("labels", {}).get("pod-template-hash") == hash_
            ),
            None,
        )
        revision = max(
            [
                int(
                    rs["metadata"]
                    .get("annotations", {})
                    .get("deployment.kubernetes.io/revision", "0")
                )
                for rs in rss
            ]
            + [0]
        )
        uid = dep["metadata"]["uid"]
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        # Recreate: the real controller scales the old ReplicaSets down and starts the new
        # one's pods only once every old pod is gone, so they never compete for devices.
        new_replicas = replicas
        if recreate:
            pod_rt = cluster.registry.get("pods")
            live = [
                p for p in store.list(pod_rt, namespace) if p["status"].get("phase") not in TERMINAL
            ]
            old = [rs for rs in rss if rs is not new_rs]
            if any(owned_by(live, rs) for rs in old):
                new_replicas = 0
        if new_rs is None:
            rs_labels = {
                **((template.get("metadata") or {}).get("labels") or {}),
                "pod-template-hash": hash_,
            }
            rs_template = clone(template)
            rs_template.setdefault("metadata", {})["labels"] = rs_labels
            selector = clone(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = hash_
            new_rs = _create(
                cluster,
                "replicasets",
                "apps",
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": f"{dep['metadata']['name']}-{hash_}",
                        "namespace": namespace,
                        "labels": rs_labels,
                        "annotations": {
                            "deployment.kubernetes.io/revision": str(revision + 1),
                            "deployment.kubernetes.io/desired-replicas": str(replicas),
                            "deployment.kubernetes.io/max-replicas": str(replicas),
                        },
                        "ownerReferences": [owner_ref(dep)],
                    },
                    "spec": {
                        "replicas": new_replicas,
                        "selector": selector,
                        "template": rs_template,
                    },
                },
            )
            cluster.rollout_started[uid] = (hash_, time.monotonic())
            if new_rs is None:
                continue
            record_event(
                store,
                dep,
                "ScalingReplicaSet",
                f"Scaled up replica set {new_rs['metadata']['name']} from 0 to {replicas}",
                component="deployment-controller",
            )
            rss.append(new_rs)
        elif cluster.rollout_started.get(uid, ("",))[0] != hash_:
            cluster.rollout_started[uid] = (hash_, time.monotonic())
        if new_rs["spec"].get("replicas") != new_replicas:
            scaled = clone(new_rs)
            scaled["spec"]["replicas"] = new_replicas
            new_rs = store.write(rs_rt, scaled)
        new_status = new_rs.get("status") or {}
        new_available = int(new_status.get("availableReplicas", 0))
        for rs in rss:
            if rs["metadata"]["uid"] == new_rs["metadata"]["uid"]:
                continue
            if (recreate or new_available >= replicas) and rs["spec"].get("replicas", 0) != 0:
                scaled = clone(rs)
                scaled["spec"]["replicas"] = 0
                store.write(rs_rt, scaled)
        _deployment_status(cluster, dep, rss, new_rs)


def _deployment_status(cluster: Cluster, dep: Obj, rss: list[Obj], new_rs: Obj) -> None:
    spec = dep["spec"]
    replicas = int(spec.get("replicas", 1))
    statuses = [rs.get("status") or {} for rs in rss]
    total = sum(int(s.get("replicas", 0)) for s in statuses)
    ready = sum(int(s.get("readyReplicas", 0)) for s in statuses)
    available = sum(int(s.get("availableReplicas", 0)) for s in statuses)
    new_status = new_rs.get("status") or {}
    updated = int(new_status.get("replicas", 0))
    rs_name = new_rs["metadata"]["name"]
    conditions = list((dep.get("status") or {}).get("conditions") or [])
    if available >= replicas - _max_unavailable(spec):
        conditions = set_condition(
            conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    else:
        conditions = set_condition(
            conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    complete = (
        updated == replicas
        and int(new_status.get("availableReplicas", 0)) >= replicas
        and total == replicas
    )
    started = cluster.rollout_started.get(dep["metadata"]["uid"], ("", time.monotonic()))[1]
    deadline = spec.get("progressDeadlineSeconds", 600)
    progressing = next((c for c in conditions if c["type"] == "Progressing"), None)
    if complete:
        conditions = set_condition(
            conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
        )
    elif progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        pass  # stays failed until the template changes (a new rollout resets the clock)
    elif time.monotonic() - started > float(deadline):
        conditions = set_condition(
            conditions,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs_name}" has timed out progressing.',
        )
    elif progressing is None:
        conditions = set_condition(
            conditions,
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            f'Created new replica set "{rs_name}"',
        )
    else:
        conditions = set_condition(
            conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            f'ReplicaSet "{rs_name}" is progressing.',
        )
    order = {"Available": 0, "Progressing": 1}
    conditions.sort(key=lambda c: order.get(c["type"], 2))
    status: Obj = {
        "observedGeneration": dep["metadata"].get("generation", 1),
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": conditions,
    }
    if total - available > 0:
        status["unavailableReplicas"] = total - available
    status = {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}
    new = clone(dep)
    new["status"] = status
    annotations = new["metadata"].setdefault("annotations", {})
    annotations["deployment.kubernetes.io/revision"] = (
        new_rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", "1")
    )
    # Conditions carry timestamps; compare without them so a quiet deployment is not rewritten.
    if _strip_times(new) != _strip_times(dep):
        cluster.store.write(cluster.registry.get("deployments", "apps"), new)


def _strip_times(obj: Obj) -> Obj:
    copied = clone(obj)
    for cond in (copied.get("status") or {}).get("conditions") or []:
        cond.pop("lastUpdateTime", None)
        cond.pop("lastTransitionTime", None)
    return copied


def reconcile_replicasets(cluster: Cluster) -> None:
    store = cluster.store
    rs_rt = cluster.registry.get("replicasets", "apps")
    pod_rt = cluster.registry.get("pods")
    for rs in store.list(rs_rt):
        namespace = rs["metadata"]["namespace"]
        pods = [
            p
            for p in owned_by(store.list(pod_rt, namespace), rs)
            if p["status"].get("phase") not in TERMINAL
        ]
        want = int(rs["spec"].get("replicas", 1))
        if len(pods) < want:
            for _ in range(want - len(pods)):
                pod = _create(
                    cluster,
                    "pods",
                    "",
                    _pod_from_template(cluster, rs, rs["spec"].get("template") or {}, {}),
                )
                if pod is not None:
                    record_event(
                        store,
                        rs,
                        "SuccessfulCreate",
                        f"Created pod: {pod['metadata']['name']}",
                        component="replicaset-controller",
                    )
        elif len(pods) > want:
            pods.sort(key=lambda p: (is_ready(p), bool(p["spec"].get("nodeName"))))
            for pod in pods[: len(pods) - want]:
                store.remove(pod_rt, pod)
                record_event(
                    store,
                    rs,
                    "SuccessfulDelete",
                    f"Deleted pod: {pod['metadata']['name']}",
                    component="replicaset-controller",
                )
        pods = [
            p
            for p in owned_by(store.list(pod_rt, namespace), rs)
            if p["status"].get("phase") not in TERMINAL
        ]
        ready = sum(1 for p in pods if is_ready(p))
        selector = selector_from_object(rs["spec"].get("selector"))
        status: Obj = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(
                1 for p in pods if labels_match(selector, p["metadata"].get("labels"))
            ),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        status = {
            k: v for k, v in status.items() if v != 0 or k in ("replicas", "observedGeneration")
        }
        if rs.get("status") != status:
            new = clone(rs)
            new["status"] = status
            store.write(rs_rt, new)


# --- DaemonSets -------------------------------------------------------------------------

_DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def reconcile_daemonsets(cluster: Cluster) -> None:
    store = cluster.store
    ds_rt = cluster.registry.get("daemonsets", "apps")
    pod_rt = cluster.registry.get("pods")
    nodes = store.list(cluster.registry.get("nodes"))
    for ds in store.list(ds_rt):
        namespace = ds["metadata"]["namespace"]
        generation = str(ds["metadata"].get("generation", 1))
        template = clone(ds["spec"].get("template") or {})
        tspec = template.setdefault("spec", {})
        tspec["tolerations"] = list(tspec.get("tolerations") or []) + [
            t for t in _DAEMON_TOLERATIONS if t not in (tspec.get("tolerations") or [])
        ]
        revision_hash = template_hash(template)
        probe = {"metadata": {"uid": ""}, "spec": tspec}
        wanted = [
            n
            for n in nodes
            if matches_node_affinity(probe, n) and untolerated_taint(probe, n) is None
        ]
        pods = owned_by(store.list(pod_rt, namespace), ds)
        by_node: dict[str, list[Obj]] = {}
        for pod in pods:
            target = _daemon_target(pod)
            by_node.setdefault(target, []).append(pod)
        wanted_names = {n["metadata"]["name"] for n in wanted}
        for target, node_pods in by_node.items():
            for pod in node_pods:
                stale = (
                    pod["metadata"].get("labels", {}).get("pod-template-generation") != generation
                )
                if target not in wanted_names or stale or pod["status"].get("phase") in TERMINAL:
                    store.remove(pod_rt, pod)
        for node in wanted:
            name = node["metadata"]["name"]
            if any(
                p["metadata"].get("labels", {}).get("pod-template-generation") == generation
                for p in by_node.get(name, [])
                if store.find(pod_rt, namespace, p["metadata"]["name"]) is not None
            ):
                continue
            pod = _pod_from_template(
                cluster,
                ds,
                template,
                {
                    "pod-template-generation": generation,
                    "controller-revision-hash": revision_hash,
                },
            )
            # Like the real controller: pin the pod to its node with a matchFields term and
            # let the scheduler bind it (so resource fit still applies).
            pod["spec"].setdefault("affinity", {})["nodeAffinity"] = {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [name]}
                            ]
                        }
                    ]
                }
            }
            created = _create(cluster, "pods", "", pod)
            if created is not None:
                record_event(
                    store,
                    ds,
                    "SuccessfulCreate",
                    f"Created pod: {created['metadata']['name']}",
                    component="daemonset-controller",
                )
        pods = [
            p
            for p in owned_by(store.list(pod_rt, namespace), ds)
            if p["status"].get("phase") not in TERMINAL
        ]
        scheduled = [p for p in pods if p["spec"].get("nodeName")]
        ready = sum(1 for p in pods if is_ready(p))
        status = {
            "currentNumberScheduled": len(scheduled),
            "desiredNumberScheduled": len(wanted),
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": sum(
                1
                for p in scheduled
                if p["metadata"].get("labels", {}).get("pod-template-generation") == generation
            ),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        if len(wanted) - ready > 0:
            status["numberUnavailable"] = len(wanted) - ready
        if not ready:
            status.pop("numberAvailable")  # omitempty in the real type
        if ds.get("status") != status:
            new = clone(ds)
            new["status"] = status
            store.write(ds_rt, new)


def _daemon_target(pod: Obj) -> str:
    if pod["spec"].get("nodeName"):
        return str(pod["spec"]["nodeName"])
    terms = (
        ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
        .get("nodeSelectorTerms", [])
    )
    for term in terms:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("values"):
                return str(field["values"][0])
    return ""


# --- Jobs -------------------------------------------------------------------------------


def _job_done(job: Obj) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def reconcile_jobs(cluster: Cluster) -> None:
    store = cluster.store
    job_rt = cluster.registry.get("jobs", "batch")
    pod_rt = cluster.registry.get("pods")
    for job in store.list(job_rt):
        namespace = job["metadata"]["namespace"]
        spec = job["spec"]
        pods = owned_by(store.list(pod_rt, namespace), job)
        succeeded = sum(1 for p in pods if p["status"].get("phase") == "Succeeded")
        failed = sum(1 for p in pods if p["status"].get("phase") == "Failed")
        active = [p for p in pods if p["status"].get("phase") not in TERMINAL]
        status = clone(job.get("status") or {})
        conditions = list(status.get("conditions") or [])
        now = now_iso()
        status.setdefault("startTime", now)
        completions = int(spec.get("completions") or 1)
        deadline = spec.get("activeDeadlineSeconds")
        started = cluster.job_started.setdefault(job["metadata"]["uid"], time.monotonic())
        if not _job_done(job):
            if succeeded >= completions:
                conditions = set_condition(
                    conditions,
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                )
                conditions = set_condition(
                    conditions,
                    "Complete",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                )
                status["completionTime"] = now
                record_event(store, job, "Completed", "Job completed", component="job-controller")
            elif failed > int(spec.get("backoffLimit", 6)):
                conditions = set_condition(
                    conditions,
                    "FailureTarget",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                )
                conditions = set_condition(
                    conditions,
                    "Failed",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                )
                record_event(
                    store,
                    job,
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    type_="Warning",
                    component="job-controller",
                )
            elif deadline is not None and time.monotonic() - started > float(deadline):
                conditions = set_condition(
                    conditions,
                    "FailureTarget",
                    "True",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                )
                conditions = set_condition(
                    conditions,
                    "Failed",
                    "True",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                )
                record_event(
                    store,
                    job,
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                    type_="Warning",
                    component="job-controller",
                )
            elif not spec.get("suspend"):
                want = min(int(spec.get("parallelism", 1)), completions - succeeded) - len(active)
                last_failure = cluster.job_last_failure.get(job["metadata"]["uid"], 0.0)
                if failed and time.monotonic() - last_failure < cluster.timings.job_backoff_s:
                    want = 0
                for _ in range(max(0, want)):
                    pod = _create(
                        cluster,
                        "pods",
                        "",
                        _pod_from_template(cluster, job, spec.get("template") or {}, {}),
                    )
                    if pod is not None:
                        active.append(pod)
                        record_event(
                            store,
                            job,
                            "SuccessfulCreate",
                            f"Created pod: {pod['metadata']['name']}",
                            component="job-controller",
                        )
        if _job_done({"status": {"conditions": conditions}}):
            for pod in active:
                if pod["status"].get("phase") not in TERMINAL and any(
                    c["type"] == "Failed" and c["status"] == "True" for c in conditions
                ):
                    store.remove(pod_rt, pod)
            active = []
        status["conditions"] = conditions
        status["active"] = len(active)
        status["succeeded"] = succeeded
        status["failed"] = failed
        status["ready"] = sum(1 for p in active if is_ready(p))
        status["terminating"] = 0
        status["uncountedTerminatedPods"] = {}
        for key in ("active", "succeeded", "failed"):
            if not status[key]:
                status.pop(key)
        if not status["conditions"]:
            status.pop("conditions")
        if status != job.get("status"):
            new = clone(job)
            new["status"] = status
            store.write(job_rt, new)


# --- storage, scheduling ------------------------------------------------------------------


def reconcile_pvcs(cluster: Cluster) -> None:
    store = cluster.store
    pvc_rt = cluster.registry.get("persistentvolumeclaims")
    pv_rt = cluster.registry.get("persistentvolumes")
    for pvc in store.list(pvc_rt):
        if (pvc.get("status") or {}).get("phase") == "Bound":
            continue
        spec = pvc.get("spec") or {}
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        pv_name = f"pvc-{pvc['metadata']['uid']}"
        if store.find(pv_rt, None, pv_name) is None:
            store.create(
                pv_rt,
                None,
                {
                    "metadata": {
                        "name": pv_name,
                        "annotations": {
                            "pv.kubernetes.io/provisioned-by": "emulator.local/hostpath"
                        },
                    },
                    "spec": {
                        "capacity": {"storage": size},
                        "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Delete",
                        "storageClassName": spec.get("storageClassName", "standard"),
                        "volumeMode": spec.get("volumeMode", "Filesystem"),
                        "hostPath": {"path": f"/var/lib/emulator/{pv_name}"},
                        "claimRef": {
                            "apiVersion": "v1",
                            "kind": "PersistentVolumeClaim",
                            "name": pvc["metadata"]["name"],
                            "namespace": pvc["metadata"]["namespace"],
                            "uid": pvc["metadata"]["uid"],
                        },
                    },
                    "status": {"phase": "Bound"},
                },
            )
        new = clone(pvc)
        new["spec"]["volumeName"] = pv_name
        new.setdefault("metadata", {}).setdefault("annotations", {})[
            "pv.kubernetes.io/bind-completed"
        ] = "yes"
        new["status"] = {
            "phase": "Bound",
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "capacity": {"storage": size},
        }
        store.write(pvc_rt, new)
        record_event(
            store,
            pvc,
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {pv_name}",
            component="persistentvolume-controller",
        )


def schedule_pods(cluster: Cluster) -> None:
    store = cluster.store
    pod_rt = cluster.registry.get("pods")
    pods = store.list(pod_rt)
    nodes = store.list(cluster.registry.get("nodes"))
    # Kept up to date as pods bind, so each decision sees the ones bound before it.
    by_node = bound_pods_by_node(pods)
    by_name = {node["metadata"]["name"]: node for node in nodes}
    for pod in pods:
        if pod["spec"].get("nodeName") or pod["status"].get("phase") != "Pending":
            continue
        node, message = choose_node(pod, nodes, pods, by_node, by_name)
        new = clone(pod)
        conditions = [
            c for c in new["status"].get("conditions") or [] if c.get("type") != "PodScheduled"
        ]
        if node is None:
            cond = {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": now_iso(),
            }
            old = next(
                (
                    c
                    for c in pod["status"].get("conditions") or []
                    if c.get("type") == "PodScheduled"
                ),
                None,
            )
            if old is not None and old.get("message") == message:
                continue  # already reported; the real scheduler backs off before retrying
            new["status"]["conditions"] = [*conditions, cond]
            store.write(pod_rt, new)
            record_event(store, pod, "FailedScheduling", message, type_="Warning")
            continue
        new["spec"]["nodeName"] = node
        new["status"]["conditions"] = [
            *conditions,
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now_iso(),
            },
        ]
        store.write(pod_rt, new)
        by_node.setdefault(node, []).append(new)
        record_event(
            store,
            pod,
            "Scheduled",
            f"Successfully assigned {pod['metadata']['namespace']}/{pod['metadata']['name']} to {node}",
        )
