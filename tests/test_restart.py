"""`meshca restart` against a stateful fake kubectl: exact calls, idempotent reruns, faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FAKE = Path(__file__).parent / "fakes" / "workloads"
REV = "asm-11910-9-distribute-root"
KC_FILE = str(Path(__file__).parent / "fakes" / "kubeconfig.yaml")
KC = ["kubectl", "--kubeconfig", KC_FILE, "--context", "ctx"]


def setup(tmp_path: Path, **overrides) -> dict:
    state = {
        "istiod": {f"istiod-{REV}": 1, "istiod": 1},
        "namespaces": {
            "shop": {
                "labels": {"istio.io/rev": REV},
                "workloads": [
                    {"kind": "Deployment", "name": "web"},
                    {"kind": "StatefulSet", "name": "db"},
                    {"kind": "DaemonSet", "name": "agent"},
                ],
                "pods": [
                    {"name": "web-1", "owner": "Deployment/web", "revision": "default"},
                    {"name": "db-0", "owner": "StatefulSet/db", "revision": "default"},
                    {"name": "agent-x", "owner": "DaemonSet/agent", "revision": "default"},
                    {"name": "debug", "owner": None, "revision": "default"},
                    {"name": "migrate-job-1", "owner": "Job/migrate", "revision": "default"},
                    {"name": "old-job-1", "owner": "Job/old", "revision": "default", "phase": "Succeeded"},
                ],
            }
        },
    }
    state.update(overrides)
    (tmp_path / "state.json").write_text(json.dumps(state))
    return state


def run(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    log = tmp_path / "calls.log"
    log.write_text("")
    env = {**os.environ, "PATH": f"{FAKE}:{os.environ['PATH']}", "MESHCA_STATE": str(tmp_path / "state.json"), "MESHCA_FAKE_LOG": str(log)}
    proc = subprocess.run(
        [sys.executable, "-m", "meshca", "restart", "--kubeconfig", KC_FILE, "--context", "ctx", "--namespace", "shop", "--revision", REV, "--timeout", "120s", *extra],
        capture_output=True, text=True, env=env,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return proc, calls


def test_restarts_every_workload_kind_waits_and_names_what_it_cannot_restart(tmp_path):
    setup(tmp_path)
    proc, calls = run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert calls == [
        KC[1:] + ["get", "deployment", f"istiod-{REV}", "-n", "istio-system", "-o", "json"],
        KC[1:] + ["get", "deployments,statefulsets,daemonsets", "-n", "shop", "-o", "json"],
        KC[1:] + ["get", "pods", "-n", "shop", "-o", "json"],
        KC[1:] + ["rollout", "restart", "deployment/web", "-n", "shop"],
        KC[1:] + ["rollout", "restart", "statefulset/db", "-n", "shop"],
        KC[1:] + ["rollout", "restart", "daemonset/agent", "-n", "shop"],
        KC[1:] + ["rollout", "status", "deployment/web", "-n", "shop", "--timeout=120s"],
        KC[1:] + ["rollout", "status", "statefulset/db", "-n", "shop", "--timeout=120s"],
        KC[1:] + ["rollout", "status", "daemonset/agent", "-n", "shop", "--timeout=120s"],
    ]
    assert "cannot restart shop/debug (bare pod" in proc.stdout
    assert "cannot restart shop/migrate-job-1 (Job pod" in proc.stdout
    assert "old-job-1" not in proc.stdout  # completed: nothing to restart
    state = json.loads((tmp_path / "state.json").read_text())
    assert {p["name"]: p["revision"] for p in state["namespaces"]["shop"]["pods"]}["db-0"] == REV


def test_a_rerun_restarts_only_what_is_not_on_the_revision_yet(tmp_path):
    setup(tmp_path)
    run(tmp_path)
    proc, calls = run(tmp_path)
    assert proc.returncode == 0
    assert not [c for c in calls if "rollout" in c]
    assert "0 restarted onto" in proc.stdout


def test_refuses_when_the_target_istiod_is_not_ready(tmp_path):
    setup(tmp_path, istiod={f"istiod-{REV}": 0})
    proc, calls = run(tmp_path)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"Error MCA0850 istio-system/istiod-{REV}: ")
    assert not [c for c in calls if "rollout" in c]


def test_a_stuck_rollout_fails_with_the_workload_named(tmp_path):
    state = setup(tmp_path)
    state["namespaces"]["shop"]["workloads"][1]["stuck"] = True
    (tmp_path / "state.json").write_text(json.dumps(state))
    proc, _ = run(tmp_path)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith("Error MCA0851 shop/statefulset/db: statefulset/db did not roll out within 120s")


def test_missing_kubectl_is_one_coded_line(tmp_path):
    setup(tmp_path)
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "meshca", "restart", "-n", "shop", "--revision", REV], capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["Error MCA0801 kubectl: kubectl not found on PATH; fix: install kubectl and run pulumi (or meshca) from a shell where it is on PATH"]


def test_a_refused_workload_listing_is_one_coded_line_and_restarts_nothing(tmp_path):
    setup(tmp_path, deny=["get deployments,statefulsets,daemonsets"])
    proc, calls = run(tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("Error MCA0852 deployments,statefulsets,daemonsets -n shop: kubectl get failed: Error from server (Forbidden)")
    assert "; fix: check the context" in line
    assert not [c for c in calls if "rollout" in c]


# ----------------------------------------------------------------------------- issue 9 finding 12
# kubectl's own words, from kubernetes/kubernetes staging/src/k8s.io/kubectl/pkg/cmd/util/helpers.go
# (StandardErrorMessage): a transport error is "Unable to connect to the server: %v", a refused
# connection "The connection to the server %s was refused - did you specify the right host or
# port?", an API status "Error from server (%s): %s".
UNREACHABLE = "Unable to connect to the server: dial tcp 127.0.0.1:6443: i/o timeout"
REFUSED = "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"


def test_a_rerun_onto_a_1_16_revision_restarts_nothing(tmp_path):
    # CSM 1.16 records the revision only in sidecar.istio.io/status (release-1.16 webhook.go:317-342)
    state = setup(tmp_path, injectors={REV: "1.16"})
    for p in state["namespaces"]["shop"]["pods"]:
        p["revision"] = REV
    (tmp_path / "state.json").write_text(json.dumps(state))
    proc, calls = run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not [c for c in calls if "rollout" in c]
    assert "namespace shop: 0 restarted onto" in proc.stdout


@pytest.mark.parametrize("message", [UNREACHABLE, REFUSED], ids=["timeout", "refused"])
def test_an_unreachable_api_server_is_named_not_reported_as_zero_ready_replicas(tmp_path, message):
    setup(tmp_path, unreachable=message)
    proc, calls = run(tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert f"MCA0421 context ctx: cannot reach the Kubernetes API server ({message}); fix: " in line
    assert "ready replicas" not in line
    assert len(calls) == 1 and not [c for c in calls if "rollout" in c]


def test_a_revision_that_is_not_installed_is_named(tmp_path):
    setup(tmp_path, istiod={"istiod": 1})
    proc, calls = run(tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert f"MCA0853 istio-system/istiod-{REV}: " in line
    assert f'Error from server (NotFound): deployments.apps "istiod-{REV}" not found' in line
    assert "ready replicas" not in line
    assert not [c for c in calls if "rollout" in c]


# The apiserver's RBAC denial (k8s.io/apiserver pkg/endpoints/handlers/responsewriters/errors.go
# forbiddenMessage) for a service account with a long name: longer than 200 characters.
FORBIDDEN = (
    'Error from server (Forbidden): deployments.apps is forbidden: User '
    '"system:serviceaccount:platform-migrations:meshca-pulumi-operator-runner" cannot list resource '
    '"deployments" in API group "apps" in the namespace "shop"'
)


def test_a_long_kubectl_error_is_named_whole(tmp_path):
    assert len(FORBIDDEN) > 200
    setup(tmp_path, deny=["get deployments,statefulsets,daemonsets"], deny_message=FORBIDDEN)
    proc, _ = run(tmp_path)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert f"MCA0852 deployments,statefulsets,daemonsets -n shop: kubectl get failed: {FORBIDDEN}; fix: " in line
