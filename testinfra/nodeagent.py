"""The node simulation of the e2e clusters: TEST INFRASTRUCTURE, not a kubelet.

The e2e clusters run a real etcd, kube-apiserver and kube-controller-manager, but no kubelet,
container runtime or scheduler: nothing here runs a container. This agent plays the three roles
the control plane expects from them, through the same API calls they make:

- node: registers one Node (``--node``), Ready, with an InternalIP from the pod range, and
  keeps it so (no node-lifecycle controller runs, so nobody marks it NotReady);
- scheduler: binds every pending pod to that node (``pods/binding``, as kube-scheduler does);
- kubelet: reports each bound pod ``Running`` with every container ready and started, init
  containers ``Completed``, a pod IP from ``--pod-cidr``; and finishes graceful deletions
  (``DELETE`` with ``gracePeriodSeconds: 0`` and the pod's uid as precondition, as the kubelet
  does once the containers stopped), so ReplicaSets scale down and rollouts complete.

Pod IPs: EndpointSlices reject loopback addresses, so pods get addresses of ``--pod-cidr``, a
range the launcher assigns only to an interface inside a network namespace of its own
(testinfra/cluster.py). Nothing ever sends traffic to them.

With KWOK in the toolchain (sigs.k8s.io/kwok, ``--bind-only``), KWOK plays node and kubelet and this
agent only binds (the toolchain builds no kube-scheduler).

Usage: python -m testinfra.nodeagent --server https://127.0.0.1:PORT --ca CA --cert CRT --key KEY
       --node NAME --pod-cidr 10.244.0.0/20 [--ready-file FILE] [--bind-only]
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
import time
import urllib.parse
from pathlib import Path

try:  # run as `python -m testinfra.nodeagent` or as a file
    from testinfra.kube import ApiError, Endpoint, Kube
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from testinfra.kube import ApiError, Endpoint, Kube

SIMULATED = "meshca.test/simulated-node"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(msg: str) -> None:
    print(f"{dt.datetime.now().strftime('%H:%M:%S.%f')[:-3]} nodeagent: {msg}", flush=True)


class Agent:
    def __init__(self, kube: Kube, node: str, cidr: str, bind_only: bool = False) -> None:
        self.kube = kube
        self.bind_only = bind_only
        self.node = node
        self.net = ipaddress.ip_network(cidr)
        hosts = self.net.hosts()
        self.node_ip = str(next(hosts))  # first address: the node
        self.pool = [str(ip) for ip in hosts]
        self.ips: dict[str, str] = {}  # pod uid -> IP

    # -- node ------------------------------------------------------------------------------
    def register_node(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node,
                "labels": {
                    "kubernetes.io/hostname": self.node,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    SIMULATED: "true",
                },
                "annotations": {SIMULATED: "testinfra/nodeagent.py: no kubelet, no containers"},
            },
            "spec": {"podCIDR": str(self.net), "podCIDRs": [str(self.net)]},
        }
        try:
            self.kube.create("/api/v1/nodes", body)
        except ApiError as exc:
            if exc.status != 409:
                raise
        t = now()
        status = {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated node (testinfra/nodeagent.py)",
                     "lastHeartbeatTime": t, "lastTransitionTime": t},
                    {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": t, "lastTransitionTime": t},
                    {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "lastHeartbeatTime": t, "lastTransitionTime": t},
                    {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "lastHeartbeatTime": t, "lastTransitionTime": t},
                ],
                "addresses": [{"type": "InternalIP", "address": self.node_ip}, {"type": "Hostname", "address": self.node}],
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "1Ti"},
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "1Ti"},
                "nodeInfo": {
                    "architecture": "amd64", "operatingSystem": "linux", "osImage": "simulated (testinfra/nodeagent.py)",
                    "kernelVersion": "", "containerRuntimeVersion": "simulated://0", "kubeletVersion": "simulated",
                    "kubeProxyVersion": "simulated", "machineID": "", "systemUUID": "", "bootID": "",
                },
            }
        }
        self.kube.merge_patch(f"/api/v1/nodes/{self.node}/status", status)
        log(f"node {self.node} Ready, InternalIP {self.node_ip}, pod range {self.net}")

    # -- pods ------------------------------------------------------------------------------
    def _ip_for(self, uid: str) -> str:
        if uid in self.ips:
            return self.ips[uid]
        used = set(self.ips.values())
        for ip in self.pool:
            if ip not in used:
                self.ips[uid] = ip
                return ip
        raise RuntimeError(f"pod range {self.net} exhausted ({len(used)} pods)")

    @staticmethod
    def _path(pod: dict, sub: str = "") -> str:
        md = pod["metadata"]
        ns = urllib.parse.quote(md["namespace"])
        name = urllib.parse.quote(md["name"])
        return f"/api/v1/namespaces/{ns}/pods/{name}{sub}"

    def handle(self, kind: str, pod: dict) -> None:
        md = pod["metadata"]
        uid = md["uid"]
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        node = spec.get("nodeName") or ""
        if kind == "DELETED":
            self.ips.pop(uid, None)
            return
        if node and node != self.node:
            return
        if self.bind_only:  # KWOK plays node and kubelet; this is only the scheduler
            if not node and not md.get("deletionTimestamp") and status.get("phase") not in ("Succeeded", "Failed"):
                self._bind(pod)
            return
        if md.get("deletionTimestamp"):
            # The kubelet's last word on a pod whose containers stopped.
            try:
                self.kube.delete(self._path(pod), {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                                                   "preconditions": {"uid": uid}})
                log(f"deleted {md['namespace']}/{md['name']}")
            except ApiError as exc:
                if exc.status not in (404, 409):
                    raise
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        if not node and not self._bind(pod):
            return
        if self._running(pod):
            if status.get("podIP"):
                self.ips.setdefault(uid, status["podIP"])
            return
        self._report_running(pod)

    def _bind(self, pod: dict) -> bool:
        md = pod["metadata"]
        try:
            self.kube.create(self._path(pod, "/binding"), {
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": md["name"], "namespace": md["namespace"], "uid": md["uid"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": self.node},
            })
            log(f"bound {md['namespace']}/{md['name']} to {self.node}")
            return True
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise
            return False

    @staticmethod
    def _running(pod: dict) -> bool:
        status = pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        return status.get("phase") == "Running" and ready and bool(status.get("podIP"))

    def _report_running(self, pod: dict) -> None:
        md, spec = pod["metadata"], pod.get("spec") or {}
        t = now()
        ip = self._ip_for(md["uid"])

        def cid(name: str) -> str:
            return f"simulated://{md['uid']}/{name}"

        containers = [
            {"name": c["name"], "image": c.get("image", ""), "imageID": c.get("image", ""), "containerID": cid(c["name"]),
             "ready": True, "started": True, "restartCount": 0, "state": {"running": {"startedAt": t}}}
            for c in spec.get("containers") or []
        ]
        inits = [
            {"name": c["name"], "image": c.get("image", ""), "imageID": c.get("image", ""), "containerID": cid(c["name"]),
             "ready": True, "restartCount": 0,
             "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t, "finishedAt": t}}}
            for c in spec.get("initContainers") or []
        ]
        conditions = [
            {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": t}
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        body = {"status": {
            "phase": "Running", "conditions": conditions, "hostIP": self.node_ip, "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": (pod.get("status") or {}).get("startTime") or t,
            "containerStatuses": containers, "initContainerStatuses": inits,
        }}
        try:
            self.kube.merge_patch(self._path(pod, "/status"), body)
            log(f"running {md['namespace']}/{md['name']} ip {ip} ({len(containers)} containers, {len(inits)} init)")
        except ApiError as exc:
            self.ips.pop(md["uid"], None)
            if exc.status not in (404, 409):
                raise

    # -- loop ------------------------------------------------------------------------------
    def sync(self) -> str:
        doc = self.kube.get("/api/v1/pods")
        items = doc.get("items") or []
        for pod in items:  # first the IPs already given out, then the work
            ip = (pod.get("status") or {}).get("podIP")
            if ip and (pod.get("spec") or {}).get("nodeName") == self.node:
                self.ips[pod["metadata"]["uid"]] = ip
        for pod in items:
            self.handle("ADDED", pod)
        return doc["metadata"]["resourceVersion"]

    def run(self, ready_file: str | None) -> None:
        if not self.bind_only:
            self.register_node()
        rv = self.sync()
        if ready_file:
            Path(ready_file).write_text(f"{os.getpid()}\n")
        while True:
            try:
                for event in self.kube.watch("/api/v1/pods", rv):
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        raise ApiError("WATCH", "/api/v1/pods", obj.get("code", 500), str(obj))
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if kind == "BOOKMARK":
                        continue
                    self.handle(kind, obj)
            except (ApiError, OSError, ValueError) as exc:
                log(f"watch ended ({exc}); listing again")
                time.sleep(0.2)
                try:
                    rv = self.sync()
                except (ApiError, OSError) as exc2:
                    log(f"list failed ({exc2}); retrying")
                    time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", required=True, help="https://127.0.0.1:PORT")
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--pod-cidr", required=True)
    ap.add_argument("--ready-file")
    ap.add_argument("--bind-only", action="store_true", help="only bind pending pods (KWOK reports nodes and pods)")
    args = ap.parse_args(argv)
    url = urllib.parse.urlsplit(args.server)
    kube = Kube(Endpoint(url.hostname or "127.0.0.1", url.port or 443, args.ca, args.cert, args.key))
    Agent(kube, args.node, args.pod_cidr, bind_only=args.bind_only).run(args.ready_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
