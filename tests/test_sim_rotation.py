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


def rehearse(name: str, ttl_hours: int) -> tuple[str, int]:
    config = builtin_config(clusters=2, namespaces=6, batch_size=3)
    r = Rehearsal(config, scenarios.get(name), switches={"cert-ttl-hours": ttl_hours}, shape=MeshShape(workloads=2))
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


@pytest.mark.parametrize("name", ["canary", "rollback-a", "rollback-b", "cert-expiry", "early-secret-delete", "skip-restart", "big-bang"])
@pytest.mark.parametrize("ttl_hours", [1, 2])
def test_lazy_rotations_give_the_eager_report(name, ttl_hours, monkeypatch):
    lazy, rotated = rehearse(name, ttl_hours)
    made_lazy = eager(monkeypatch)
    eager_doc, eager_rotated = rehearse(name, ttl_hours)
    assert made_lazy[0] > 0  # the counterfactual really queued proxies the lazy model did not
    assert rotated == eager_rotated
    assert lazy == eager_doc
