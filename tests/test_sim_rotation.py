"""Rotations that re-issue the credential a proxy holds are not queued (meshca/sim/mesh.py
``Pod.lazy``): they are replayed when the proxy's istiod changes or goes (``Cluster._wake``).
The report must be the one the eager model gives, rotation by rotation: the counterfactual here
re-queues every such proxy at once, as the model did before, and the two reports are compared
whole (timings, the process's cache counts and the run's random key fingerprints aside)."""

from __future__ import annotations

import json
import re

import pytest

from meshca.sim import scenarios
from meshca.sim.builtin import builtin_config
from meshca.sim.engine import Rehearsal
from meshca.sim.mesh import Cluster
from meshca.sim.start import MeshShape

FINGERPRINT = re.compile(r"([0-9A-F]{2}:){7}[0-9A-F]{2}\.\.\.|([0-9A-F]{2}:){31}[0-9A-F]{2}|\b[0-9a-f]{64}\b")
TEMP = re.compile(r"/tmp/meshca-rehearse-[a-z0-9_]+")


def comparable(doc: dict) -> str:
    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if not k.endswith("Seconds")}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o

    # ``stats`` counts the process's caches (certificates issued, handshakes run), which the first
    # of two runs in one process fills for the second: everything else is compared.
    kept = {k: v for k, v in doc.items() if k != "stats"}
    return TEMP.sub("<tmp>", FINGERPRINT.sub("<fp>", json.dumps(strip(kept), sort_keys=True)))


def rehearse(name: str, ttl_hours: int, keep_going: bool) -> tuple[str, int]:
    config = builtin_config(clusters=2, namespaces=6, batch_size=3)
    r = Rehearsal(config, scenarios.get(name), switches={"cert-ttl-hours": ttl_hours}, shape=MeshShape(workloads=2), keep_going=keep_going)
    doc = r.run()
    return comparable(doc), sum(1 for step in doc["steps"] for line in step.get("changed") or () if "rotated its certificate" in line)


def eager(monkeypatch) -> list[int]:
    """The model before: a proxy whose rotation changed nothing is queued for the next one."""
    made_lazy = [0]
    advance_pod = Cluster._advance_pod

    def queued_again(self, pod, ttl_minutes):
        advance_pod(self, pod, ttl_minutes)
        if pod.lazy:
            made_lazy[0] += 1
            pod.lazy = False
            self._watch(pod)

    monkeypatch.setattr(Cluster, "_advance_pod", queued_again)
    return made_lazy


# (scenario, TTL hours, keep going past failed gates). With --keep-going the old control plane is
# removed under proxies that never moved (skip-restart, cert-expiry's bare pod): orphans whose
# certificates then expire from their last rotation, the case Cluster._wake replays on removal.
CASES = [
    ("canary", 1, False), ("canary", 2, False), ("rollback-a", 1, False), ("rollback-b", 1, False),
    ("rollback-b", 2, False), ("early-secret-delete", 1, False), ("early-secret-delete", 2, False),
    ("big-bang", 1, False), ("cert-expiry", 1, False),
    ("skip-restart", 1, True), ("cert-expiry", 1, True), ("cert-expiry", 2, True),
]


@pytest.mark.parametrize("name,ttl_hours,keep_going", CASES, ids=[f"{n}-{t}h{'-keep-going' if k else ''}" for n, t, k in CASES])
def test_lazy_rotations_give_the_eager_report(name, ttl_hours, keep_going, monkeypatch):
    lazy, rotated = rehearse(name, ttl_hours, keep_going)
    made_lazy = eager(monkeypatch)
    eager_doc, eager_rotated = rehearse(name, ttl_hours, keep_going)
    assert made_lazy[0] > 0  # the counterfactual really queued proxies the lazy model did not
    assert rotated == eager_rotated
    assert lazy == eager_doc
