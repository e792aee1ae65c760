"""Literal cluster objects for discover/doctor/status/restore-ca tests (no cluster, no kubectl).

Shapes transcribed from ../shared/docs/procedure.md "Two starting points" (migrate: istiod
revision default, Deployment istio-ingressgateway without istio.io/rev, namespaces
istio-injection=enabled) and Phase A steps 1-2 (REVISION_1 installed; a moved namespace carries
istio.io/rev=REVISION_1 and no istio-injection, its pods re-injected), with object names from
istio/istio's charts: istiod[-REV] Deployments labelled istio.io/rev, webhook
istio-sidecar-injector[-REV], ConfigMap istio[-REV] key mesh; a 1.6 pod records its injector as
the label istio.io/rev ("" = default, release-1.6 pkg/kube/inject/webhook.go line 620), a 1.19
pod as the annotation istio.io/rev (injection-template.yaml line 39). The REV1 mesh config is
what asmcli writes for --ca citadel --option ca-migration-citadel (CA_PROVIDER Citadel,
caCertificates set: asm/istio/options/citadel-ca.yaml, ca-migration-citadel.yaml lines 27-66).
"""

from __future__ import annotations

import base64
import datetime as dt
import json

CONTEXT = "gke_acme-mesh-dev_us-central1_dev-1"
REV1 = "asm-11910-9-distribute-root"
REV2 = "asm-11910-9-meshca-ca-migration"
APPS = ("frontend", "cart", "checkout")


def ca():
    """A self-signed root and its key, as istio-ca-secret holds them on Istio on GKE."""
    from meshca import pki

    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    return pki.make_root("Istio CA", org="cluster.local", not_before=now, days=3650)


def pem_key(issued) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return issued.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ns(name: str, **labels) -> dict:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def pod(namespace: str, name: str, *, rev16: str | None = None, rev19: str | None = None, proxy: bool = True, labels=None, owner="ReplicaSet") -> dict:
    meta = {"name": name, "namespace": namespace, "labels": dict(labels or {"app": namespace}), "annotations": {},
            "ownerReferences": [{"kind": owner, "name": f"{namespace}-abc"}]}
    if rev16 is not None:
        meta["labels"]["istio.io/rev"] = rev16
    if rev19 is not None:
        meta["annotations"]["istio.io/rev"] = rev19
    containers = [{"name": "app"}] + ([{"name": "istio-proxy"}] if proxy else [])
    return {"kind": "Pod", "metadata": meta, "spec": {"containers": containers}, "status": {"phase": "Running"}}


def deployment(namespace: str, name: str, *, labels=None, template_labels=None, annotations=None, containers=None, sa=None, replicas=1) -> dict:
    tl = template_labels or {"app": name}
    return {"kind": "Deployment", "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(tl)},
                     "template": {"metadata": {"labels": dict(tl), "annotations": annotations or {}},
                                  "spec": {"containers": containers or [{"name": name}], **({"serviceAccountName": sa} if sa else {})}}}}


def mesh_config_map(rev: str, provider: str, ca_certificates: bool) -> dict:
    mesh = {"defaultConfig": {"proxyMetadata": {"CA_PROVIDER": provider}}}
    if ca_certificates:
        mesh["caCertificates"] = [{"pem": "-----BEGIN CERTIFICATE-----\nMESHCA\n-----END CERTIFICATE-----\n"}]
    return {"kind": "ConfigMap", "metadata": {"name": f"istio-{rev}", "namespace": "istio-system"}, "data": {"mesh": json.dumps(mesh)}}


GW_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}


def baseline(root=None) -> list[dict]:
    """Istio on GKE 1.6 at baseline: istiod (default), the 1.6 gateway, three injected namespaces."""
    root = root or ca()
    objs = [
        ns("istio-system"), ns("kube-system"),
        deployment("istio-system", "istiod", labels={"app": "istiod", "istio": "pilot", "istio.io/rev": "default"}, template_labels={"app": "istiod", "istio": "pilot"}),
        deployment("istio-system", "istio-ingressgateway", labels=dict(GW_LABELS), template_labels=dict(GW_LABELS),
                   annotations={"sidecar.istio.io/inject": "false"},
                   containers=[{"name": "istio-proxy", "args": ["proxy", "router", "--domain", "$(POD_NAMESPACE).svc.cluster.local"]}]),
        {"kind": "Service", "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"}, "spec": {"selector": dict(GW_LABELS)}},
        {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
         "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "istio-ingressgateway"}, "minReplicas": 1}},
        {"kind": "MutatingWebhookConfiguration", "metadata": {"name": "istio-sidecar-injector", "labels": {"istio.io/rev": "default"}}, "webhooks": [{"name": "sidecar-injector.istio.io"}]},
        {"kind": "Secret", "type": "istio.io/ca-root", "metadata": {"name": "istio-ca-secret", "namespace": "istio-system"},
         "data": {"ca-cert.pem": b64(root.cert_pem), "ca-key.pem": b64(pem_key(root))}},
        pod("istio-system", "istio-ingressgateway-1", proxy=True, labels=dict(GW_LABELS), rev16=""),
    ]
    for a in APPS:
        objs += [ns(a, **{"istio-injection": "enabled"}), deployment(a, a), pod(a, f"{a}-1", rev16="")]
    return objs


def distribute_root_batch_1(root=None) -> list[dict]:
    """After A1 (REV1 installed, cacerts plugged in) and A2 for frontend (relabelled, restarted)."""
    root = root or ca()
    objs = [o for o in baseline(root) if not (o["kind"] in ("Namespace", "Pod") and o["metadata"].get("namespace", o["metadata"]["name"]) == "frontend")]
    objs += [
        deployment("istio-system", f"istiod-{REV1}", labels={"app": "istiod", "istio.io/rev": REV1}, template_labels={"app": "istiod", "istio.io/rev": REV1}),
        mesh_config_map(REV1, "Citadel", True),
        {"kind": "MutatingWebhookConfiguration", "metadata": {"name": f"istio-sidecar-injector-{REV1}", "labels": {"istio.io/rev": REV1}}, "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io"}]},
        {"kind": "Secret", "type": "Opaque", "metadata": {"name": "cacerts", "namespace": "istio-system"},
         "data": {"ca-cert.pem": b64(root.cert_pem), "ca-key.pem": b64(pem_key(root)), "root-cert.pem": b64(root.cert_pem), "cert-chain.pem": b64(root.cert_pem)}},
        ns("frontend", **{"istio.io/rev": REV1}),
        pod("frontend", "frontend-2", rev19=REV1),
    ]
    return objs
