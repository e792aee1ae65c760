"""What ``istioctl install -f <asm overlays> --set revision=REV`` creates, transcribed.

Sources:
- P  = GoogleCloudPlatform/anthos-service-mesh-packages at tag ``1.19.10-asm.9+config1``
  (asm/istio/istio-operator.yaml, asm/istio/options/*.yaml, asm/istio/istiod-service.yaml,
  asmcli/lib/*.sh)
- I  = istio/istio at tag 1.19.10 (commit 745cdaa0dfdbeb31393fed75028a8c629c0f3a36), chart
  manifests/charts/istio-control/istio-discovery/templates/ (deployment.yaml, service.yaml,
  autoscale.yaml, poddisruptionbudget.yaml, mutatingwebhook.yaml,
  validatingwebhookconfiguration.yaml, configmap.yaml, istiod-injector-configmap.yaml) and
  operator/pkg/util/merge_iop.go, operator/pkg/manifest/shared.go, operator/cmd/mesh/install.go.

Overlay order (P asmcli/lib/util.sh:4-21 gen_install_params, :598-606 post_process_istio_yamls,
:553-568 organize_kpt_files, asmcli/components/ca/citadel.sh:65-69 configure_citadel,
asmcli/lib/parse.sh:88,94): ``-f istio-operator.yaml``, then (citadel only) ``options/citadel-ca.yaml``,
the ``--option`` files in flag order, the ``--custom_overlay`` files in flag order, and
``options/citadel-ca.yaml`` again last when ``--ca citadel``. Layering is istioctl's
``OverlayIOP`` (I shared.go:280-312): a strategic merge where maps merge, lists are replaced, and
``meshConfig.trustDomainAliases`` is a merged list (I merge_iop.go:144 ``patchStrategy:"merge"``).

Only the ca-migration options, citadel-ca and the base file are transcribed; every other option
name is accepted (it exists at the tag) but its contents are not modelled.
"""

from __future__ import annotations

import copy
import json

import yaml

ISTIO_VERSION = "1.19.10-asm.9"

# P asm/istio/options/ at the tag (git ls-tree): the names `--option NAME` accepts.
OPTION_NAMES = (
    "attached-cluster", "audit-authorizationpolicy", "ca-migration-citadel", "ca-migration-meshca",
    "citadel-ca", "cloud-tracing", "cni-gcp", "cni-onprem-rhel", "cni-onprem-selinux", "cni-onprem",
    "cni-selinux", "distroless-proxy", "envoy-access-log", "envoy-core-dump", "iap-operator",
    "internal-load-balancer", "legacy-default-egressgateway", "legacy-default-ingressgateway",
    "managed-control-plane-webhooks", "managed_cas", "multicloud", "multicluster", "multiproject",
    "openshift", "private-ca", "prometheus-and-stackdriver", "prometheus", "stackdriver", "v1beta1-crds",
)


def base_iop(fleet_id: str, project_id: str, revision: str, cluster_name: str, location: str, network: str) -> dict:
    """P asm/istio/istio-operator.yaml with asmcli's kpt setters applied (P asmcli/lib/config.sh:1-79:
    trustDomain = FLEET.svc.id.goog (:68), tokenAudiences istio-ca,FLEET.svc.id.goog (:69),
    rev (:55), tag = release (:56))."""
    td = f"{fleet_id}.svc.id.goog"
    gke_meta = f"{project_id}|PROJECT_NUMBER|{cluster_name}|{location}"
    return {
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "spec": {
            "profile": "empty",
            "hub": "gke.gcr.io/asm",
            "tag": ISTIO_VERSION,
            "meshConfig": {
                "trustDomainAliases": [td],
                "trustDomain": td,
                "defaultConfig": {
                    "proxyMetadata": {
                        "GKE_CLUSTER_URL": "",
                        "GCP_METADATA": gke_meta,
                        "CA_PROVIDER": "GoogleCA",
                        "PLUGINS": "GoogleTokenExchange",
                        "GCE_METADATA_HOST": "metadata.google.internal",
                    }
                },
                "localityLbSetting": {"enabled": False},
            },
            "components": {
                "base": {"enabled": True},
                "ingressGateways": [{"enabled": False, "name": "istio-ingressgateway"}],
                "egressGateways": [{"enabled": False, "name": "istio-egressgateway"}],
                "pilot": {
                    "enabled": True,
                    "k8s": {
                        "resources": {"requests": {"cpu": "500m"}},
                        "hpaSpec": {"minReplicas": 2},
                        "replicaCount": 2,
                        "env": [
                            {"name": "GKE_CLUSTER_URL", "value": ""},
                            {"name": "GCP_METADATA", "value": gke_meta},
                            {"name": "ENABLE_STACKDRIVER_MONITORING", "value": "true"},
                            {"name": "TOKEN_AUDIENCES", "value": f"istio-ca,{td}"},
                            {"name": "PILOT_ENABLE_CROSS_CLUSTER_WORKLOAD_ENTRY", "value": "true"},
                        ],
                    },
                },
            },
            "values": {
                "sidecarInjectorWebhook": {"rewriteAppHTTPProbe": True},
                "global": {
                    "caAddress": "meshca.googleapis.com:443",
                    "pilotCertProvider": "kubernetes",
                    "sts": {"servicePort": 15463},
                    "sds": {"token": {"aud": td}},
                    "multiCluster": {"clusterName": f"cn-{project_id}-{location}-{cluster_name}"},
                    "meshID": "proj-PROJECT_NUMBER",
                    "network": network,
                },
                "gateways": {
                    "istio-ingressgateway": {"injectionTemplate": "gateway"},
                    "istio-egressgateway": {"injectionTemplate": "gateway"},
                },
            },
        },
    }


# P asm/istio/options/citadel-ca.yaml
CITADEL_CA = {
    "spec": {
        "meshConfig": {"trustDomain": "cluster.local", "defaultConfig": {"proxyMetadata": {"CA_PROVIDER": "Citadel", "PLUGINS": ""}}},
        "values": {"global": {"caAddress": "", "pilotCertProvider": "istiod"}},
    }
}


def ca_migration_citadel(meshca_root_pem: str) -> dict:
    """P asm/istio/options/ca-migration-citadel.yaml. The file embeds Google's Mesh CA root; the
    stand-in substitutes the root it is given (see pki.py) and never carries Google's PEM."""
    return {
        "spec": {
            "values": {"pilot": {"env": {"ISTIO_MULTIROOT_MESH": True}}},
            "meshConfig": {
                "defaultConfig": {"proxyMetadata": {"PROXY_CONFIG_XDS_AGENT": "true"}},
                "caCertificates": [{"pem": meshca_root_pem}],
            },
        }
    }


# P asm/istio/options/ca-migration-meshca.yaml (at 1.19.10-asm.9+config1 it still sets ENABLE_CA_SERVER: false)
CA_MIGRATION_MESHCA = {
    "spec": {
        "values": {"pilot": {"env": {"ENABLE_CA_SERVER": False, "ISTIO_MULTIROOT_MESH": True}}},
        "meshConfig": {
            "defaultConfig": {"proxyMetadata": {"PROXY_CONFIG_XDS_AGENT": "true"}},
            "trustDomainAliases": ["cluster.local"],
        },
    }
}

# Lists merged (not replaced) by OverlayIOP: I merge_iop.go:134-155 (meshConfig) and
# :45-60 (components gateways, merged by name).
MERGED_LISTS = {("spec", "meshConfig", "trustDomainAliases"), ("spec", "meshConfig", "defaultServiceExportTo")}


def overlay_iop(base: dict, overlay: dict, path: tuple = ()) -> dict:
    out = copy.deepcopy(base)
    for k, v in (overlay or {}).items():
        p = path + (k,)
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = overlay_iop(out[k], v, p)
        elif isinstance(v, list) and isinstance(out.get(k), list) and p in MERGED_LISTS:
            merged = list(out[k])
            for item in v:
                if item not in merged:
                    merged.append(item)
            out[k] = merged
        elif v is None:
            out.pop(k, None)
        else:
            out[k] = copy.deepcopy(v)
    return out


class _BlockDumper(yaml.SafeDumper):
    pass


def _str_representer(dumper, data):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_BlockDumper.add_representer(str, _str_representer)


def _yaml(doc) -> str:
    """PEMs as literal blocks, as istioctl writes the mesh config."""
    return yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False)


def _suffix(rev: str) -> str:
    return "" if rev in ("", "default") else f"-{rev}"


def _env_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def mesh_config(iop: dict, rev: str) -> dict:
    """I configmap.yaml:1-112: the chart's mesh (trustDomain cluster.local, rootNamespace,
    defaultConfig.discoveryAddress istiod-REV.istio-system.svc:15012, meshId) mergeOverwrite
    the IstioOperator's meshConfig."""
    spec = iop["spec"]
    mesh = {
        "trustDomain": "cluster.local",
        "rootNamespace": "istio-system",
        "defaultConfig": {
            "tracing": {},
            "discoveryAddress": f"istiod{_suffix(rev)}.istio-system.svc:15012",
        },
    }
    mesh_id = ((spec.get("values") or {}).get("global") or {}).get("meshID")
    if mesh_id:
        mesh["defaultConfig"]["meshId"] = mesh_id

    def merge_overwrite(a, b):
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                merge_overwrite(a[k], v)
            else:
                a[k] = copy.deepcopy(v)
        return a

    return merge_overwrite(mesh, spec.get("meshConfig") or {})


def injection_values(iop: dict, rev: str) -> dict:
    """What the injector needs from the revision's values/meshConfig (see injection.DEFAULT_VALUES)."""
    spec = iop["spec"]
    g = (spec.get("values") or {}).get("global") or {}
    mesh = mesh_config(iop, rev)
    return {
        "hub": spec.get("hub") or "gke.gcr.io/asm",
        "tag": spec.get("tag") or ISTIO_VERSION,
        "caAddress": g.get("caAddress", ""),
        "pilotCertProvider": g.get("pilotCertProvider", "istiod"),
        "tokenAud": ((g.get("sds") or {}).get("token") or {}).get("aud", "istio-ca"),
        "stsPort": (g.get("sts") or {}).get("servicePort", 0),
        "clusterName": (g.get("multiCluster") or {}).get("clusterName", "Kubernetes"),
        "network": g.get("network", ""),
        "meshID": g.get("meshID", ""),
        "trustDomain": mesh.get("trustDomain", "cluster.local"),
        "proxyMetadata": ((mesh.get("defaultConfig") or {}).get("proxyMetadata")) or {},
    }


def _chart_labels(rev: str, extra: dict | None = None) -> dict:
    labels = {
        "istio.io/rev": rev or "default",
        "install.operator.istio.io/owning-resource": "unknown",
        "operator.istio.io/component": "Pilot",
        "release": "istio",
        # I operator/pkg/helmreconciler/reconciler.go:395-420 (added to every object istioctl applies)
        "operator.istio.io/managed": "Reconcile",
        "operator.istio.io/version": ISTIO_VERSION,
    }
    labels.update(extra or {})
    return labels


def istiod_service_yaml(rev: str) -> str:
    """P asm/istio/istiod-service.yaml (the kpt setter ``anthos.servicemesh.rev`` set to REV)."""
    return f"""# Transcribed by the meshca asmcli stand-in from anthos-service-mesh-packages
# 1.19.10-asm.9+config1 asm/istio/istiod-service.yaml (kpt setter anthos.servicemesh.rev = {rev}).
# This YAML is intended to create an istiod service for validation to
# work around istio/istio/issues/27501 in the case of no non-revision
# installation.
---
apiVersion: v1
kind: Service
metadata:
  name: istiod
  namespace: istio-system
  labels:
    istio.io/rev: {rev}  # {{"$ref":"#/definitions/io.k8s.cli.setters.anthos.servicemesh.rev"}}
    app: istiod
    istio: pilot
    release: istio
spec:
  ports:
    - port: 15010
      name: grpc-xds  # plaintext
      protocol: TCP
    - port: 15012
      name: https-dns  # mTLS with k8s-signed cert
      protocol: TCP
    - port: 443
      name: https-webhook  # validation and injection
      targetPort: 15017
      protocol: TCP
    - port: 15014
      name: http-monitoring  # prometheus stats
      protocol: TCP
  selector:
    app: istiod
    istio.io/rev: {rev}  # {{"$ref":"#/definitions/io.k8s.cli.setters.anthos.servicemesh.rev"}}
"""


ISTIOOPERATOR_CRD = {
    # The base chart's CRD (istioctl installs component `base`), reduced to an open schema.
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "istiooperators.install.istio.io", "labels": {"release": "istio"}},
    "spec": {
        "group": "install.istio.io",
        "names": {"kind": "IstioOperator", "listKind": "IstioOperatorList", "plural": "istiooperators", "singular": "istiooperator", "shortNames": ["iop", "io"]},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


def _webhook_core(prefix: str, url: str, ca_bundle: str, reinvocation: bool = True) -> dict:
    """I mutatingwebhook.yaml:9-32 "core" with istiodRemote.injectionURL set (clientConfig.url)."""
    wh = {
        "name": f"{prefix}sidecar-injector.istio.io",
        "clientConfig": {"url": url, "caBundle": ca_bundle},
        "sideEffects": "None",
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "failurePolicy": "Fail",
        "admissionReviewVersions": ["v1beta1", "v1"],
    }
    if reinvocation:
        wh["reinvocationPolicy"] = "Never"  # values.yaml:109
    return wh


def revision_webhooks(rev: str, url: str, ca_bundle: str, reinvocation: bool = True) -> list[dict]:
    """I mutatingwebhook.yaml:54-95: the two webhooks of a revision (not the default-only ones)."""
    ns_wh = _webhook_core("rev.namespace.", url, ca_bundle, reinvocation)
    ns_wh["namespaceSelector"] = {
        "matchExpressions": [
            {"key": "istio.io/rev", "operator": "In", "values": [rev]},
            {"key": "istio-injection", "operator": "DoesNotExist"},
        ]
    }
    ns_wh["objectSelector"] = {"matchExpressions": [{"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}]}
    obj_wh = _webhook_core("rev.object.", url, ca_bundle, reinvocation)
    obj_wh["namespaceSelector"] = {
        "matchExpressions": [
            {"key": "istio.io/rev", "operator": "DoesNotExist"},
            {"key": "istio-injection", "operator": "DoesNotExist"},
        ]
    }
    obj_wh["objectSelector"] = {
        "matchExpressions": [
            {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]},
            {"key": "istio.io/rev", "operator": "In", "values": [rev]},
        ]
    }
    return [ns_wh, obj_wh]


def default_webhooks(url: str, ca_bundle: str, reinvocation: bool = True) -> list[dict]:
    """I mutatingwebhook.yaml:101-131 / revision-tags.yaml:88-117 (the default revision's extra two)."""
    ns_wh = _webhook_core("namespace.", url, ca_bundle, reinvocation)
    ns_wh["namespaceSelector"] = {"matchExpressions": [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}]}
    ns_wh["objectSelector"] = {"matchExpressions": [{"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}]}
    obj_wh = _webhook_core("object.", url, ca_bundle, reinvocation)
    obj_wh["namespaceSelector"] = {
        "matchExpressions": [
            {"key": "istio-injection", "operator": "DoesNotExist"},
            {"key": "istio.io/rev", "operator": "DoesNotExist"},
        ]
    }
    obj_wh["objectSelector"] = {
        "matchExpressions": [
            {"key": "sidecar.istio.io/inject", "operator": "In", "values": ["true"]},
            {"key": "istio.io/rev", "operator": "DoesNotExist"},
        ]
    }
    return [ns_wh, obj_wh]


def objects(rev: str, iop: dict, injector_url: str, ca_bundle: str) -> list[tuple[str, str, str | None, dict]]:
    """(apiVersion, plural, namespace, object) for everything the revision's install creates."""
    ns = "istio-system"
    name = f"istiod{_suffix(rev)}"
    spec = iop["spec"]
    pilot = ((spec.get("components") or {}).get("pilot") or {}).get("k8s") or {}
    values = spec.get("values") or {}
    g = values.get("global") or {}
    env_overrides = ((values.get("pilot") or {}).get("env")) or {}
    mesh = mesh_config(iop, rev)
    hub, tag = spec.get("hub") or "gke.gcr.io/asm", spec.get("tag") or ISTIO_VERSION
    env = [
        {"name": "REVISION", "value": rev or "default"},  # deployment.yaml:133
        {"name": "PILOT_CERT_PROVIDER", "value": g.get("pilotCertProvider", "istiod")},  # deployment.yaml:137
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
        {"name": "SERVICE_ACCOUNT", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.serviceAccountName"}}},
        {"name": "KUBECONFIG", "value": "/var/run/secrets/remote/config"},
    ]
    for k in sorted(env_overrides):  # deployment.yaml: range .Values.pilot.env
        env.append({"name": k, "value": _env_value(env_overrides[k])})
    env += [
        {"name": "ISTIOD_ADDR", "value": f"{name}.{ns}.svc:15012"},  # deployment.yaml:166
        {"name": "CLUSTER_ID", "value": (g.get("multiCluster") or {}).get("clusterName") or "Kubernetes"},  # :170
    ]
    for e in pilot.get("env") or []:  # components.pilot.k8s.env (IstioOperator k8s overlay)
        env = [x for x in env if x["name"] != e["name"]] + [e]
    sel = {"app": "istiod", "istio.io/rev": rev or "default"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": _chart_labels(rev, {"app": "istiod", "istio": "pilot"})},
        "spec": {
            # autoscaleEnabled (values.yaml:5): no replicas field from the chart; the IstioOperator's
            # k8s.replicaCount is applied by istioctl as an overlay.
            "replicas": int(pilot.get("replicaCount") or 1),
            "strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "25%"}},
            "selector": {"matchLabels": dict(sel)},
            "template": {
                "metadata": {
                    "labels": {
                        "app": "istiod",
                        "istio.io/rev": rev or "default",
                        "install.operator.istio.io/owning-resource": "unknown",
                        "sidecar.istio.io/inject": "false",
                        "operator.istio.io/component": "Pilot",
                        "istio": "istiod" if rev not in ("", "default") else "pilot",
                    },
                    "annotations": {"ambient.istio.io/redirection": "disabled", "sidecar.istio.io/inject": "false"},
                },
                "spec": {
                    "serviceAccountName": name,
                    "containers": [
                        {
                            "name": "discovery",
                            "image": f"{hub}/pilot:{tag}",  # deployment.yaml:88
                            "args": ["discovery", "--monitoringAddr=:15014", "--log_output_level=default:info", "--domain", "cluster.local", "--keepaliveMaxServerConnectionAge", "30m"],
                            "ports": [
                                {"containerPort": 8080, "protocol": "TCP"},
                                {"containerPort": 15010, "protocol": "TCP"},
                                {"containerPort": 15017, "protocol": "TCP"},
                            ],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "initialDelaySeconds": 1, "periodSeconds": 3, "timeoutSeconds": 5},
                            "env": env,
                            "resources": pilot.get("resources") or {"requests": {"cpu": "500m", "memory": "2048Mi"}},
                        }
                    ],
                },
            },
        },
    }
    service = {  # service.yaml:1-41
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": _chart_labels(rev, {"app": "istiod", "istio": "pilot"})},
        "spec": {
            "ports": [
                {"port": 15010, "name": "grpc-xds", "protocol": "TCP"},
                {"port": 15012, "name": "https-dns", "protocol": "TCP"},
                {"port": 443, "name": "https-webhook", "targetPort": 15017, "protocol": "TCP"},
                {"port": 15014, "name": "http-monitoring", "protocol": "TCP"},
            ],
            "selector": dict(sel),
        },
    }
    hpa_min = int(((pilot.get("hpaSpec") or {}).get("minReplicas")) or 1)
    hpa = {  # autoscale.yaml:31-61 (autoscaling/v2 on Kubernetes >= 1.23)
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": ns, "labels": _chart_labels(rev, {"app": "istiod"})},
        "spec": {
            "maxReplicas": int(((pilot.get("hpaSpec") or {}).get("maxReplicas")) or 5),
            "minReplicas": hpa_min,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
        },
    }
    pdb = {  # poddisruptionbudget.yaml:1-29
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": ns, "labels": _chart_labels(rev, {"app": "istiod", "istio": "pilot"})},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": dict(sel)}},
    }
    mesh_cm = {  # configmap.yaml
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"istio{_suffix(rev)}", "namespace": ns, "labels": _chart_labels(rev)},
        "data": {"mesh": _yaml(mesh), "meshNetworks": "networks: {}"},
    }
    inj_values = {
        "global": g,
        "istio_cni": {"enabled": False, "chained": True},
        "sidecarInjectorWebhook": values.get("sidecarInjectorWebhook") or {},
        "revision": rev,
    }
    injector_cm = {  # istiod-injector-configmap.yaml: keys values + config (templates live in the stand-in injector)
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"istio-sidecar-injector{_suffix(rev)}", "namespace": ns, "labels": _chart_labels(rev)},
        "data": {
            "values": json.dumps(inj_values, indent=2, sort_keys=True),
            "config": "defaultTemplates: [sidecar]\npolicy: enabled\nalwaysInjectSelector:\n  []\nneverInjectSelector:\n  []\ninjectedAnnotations:\ntemplate: \"{{ Template_Version_And_Istio_Version_Mismatched_Check_Installation }}\"\n"
            "# templates sidecar/gateway: rendered by the meshca stand-in injector (standins/injection.py)\n",
        },
    }
    url = f"{injector_url.rstrip('/')}/inject/rev/{rev}"
    mwc = {  # mutatingwebhook.yaml:34-95
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": f"istio-sidecar-injector{_suffix(rev)}", "labels": _chart_labels(rev, {"app": "sidecar-injector"})},
        "webhooks": revision_webhooks(rev, url, ca_bundle) if rev not in ("", "default") else revision_webhooks("default", url, ca_bundle) + default_webhooks(url, ca_bundle),
    }
    vwc = {  # validatingwebhookconfiguration.yaml:1-58, base.validationURL = the stand-in's /validate
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {
            "name": f"istio-validator{_suffix(rev)}-{ns}",
            "labels": {"app": "istiod", "release": "istio", "istio": "istiod", "istio.io/rev": rev or "default"},
        },
        "webhooks": [
            {
                "name": "rev.validation.istio.io",
                "clientConfig": {"url": f"{injector_url.rstrip('/')}/validate", "caBundle": ca_bundle},
                "rules": [
                    {
                        "operations": ["CREATE", "UPDATE"],
                        "apiGroups": ["security.istio.io", "networking.istio.io", "telemetry.istio.io", "extensions.istio.io"],
                        "apiVersions": ["*"],
                        "resources": ["*"],
                    }
                ],
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1beta1", "v1"],
                "objectSelector": {"matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": [rev or "default"]}]},
            }
        ],
    }
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns, "labels": {"app": "istiod", "release": "istio"}}}
    # operator/cmd/mesh/install.go:272-294: the installed IstioOperator, saved as installed-state[-NAME]-REV
    saved = copy.deepcopy(iop)
    saved["metadata"] = {
        "name": "installed-state" + (f"-{rev}" if rev else ""),
        "namespace": ns,
        "annotations": {"install.istio.io/ignoreReconcile": "true"},
    }
    saved["spec"]["revision"] = rev
    return [
        ("v1", "serviceaccounts", ns, sa),
        ("v1", "configmaps", ns, mesh_cm),
        ("v1", "configmaps", ns, injector_cm),
        ("apps/v1", "deployments", ns, deployment),
        ("v1", "services", ns, service),
        ("autoscaling/v2", "horizontalpodautoscalers", ns, hpa),
        ("policy/v1", "poddisruptionbudgets", ns, pdb),
        ("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", None, mwc),
        ("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", None, vwc),
        ("install.istio.io/v1alpha1", "istiooperators", ns, saved),
    ]
