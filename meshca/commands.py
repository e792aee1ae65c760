"""Command lines, exactly as a careful operator would type them (argv lists, never shell text).

Sources: the guide (procedure.md) with its mistakes corrected, asmcli 1.19.10-asm.9 flag parsing
(lib/parse.sh), kubectl. Global flags go right after the tool name: ``kubectl --kubeconfig K
--context C ...``, so one kubeconfig may hold every cluster of the mesh.
"""

from __future__ import annotations

import shlex

from .config import Asmcli, Cluster

SYSTEM_NS = "istio-system"
IGNORE_NOT_FOUND = "--ignore-not-found=true"
ISTIOD_KINDS = "Service,Deployment,HorizontalPodAutoscaler,PodDisruptionBudget"
# Migrate: the `istiod` Service is re-targeted to REV1 by istiod-service.yaml, so the old
# control plane's deletion leaves it out (the guide deletes it after applying it, which
# leaves the default validation webhook without a backend).
ISTIOD_KINDS_KEEP_SERVICE = "Deployment,HorizontalPodAutoscaler,PodDisruptionBudget"
# The meshca of the project's own virtualenv, relative to the project directory (where
# pulumi-command runs every Command: provider/pkg/provider/local/commandOutputs.go, cmd.Dir =
# os.Getwd() of the provider, which the engine starts in the project directory). `make test`
# and `pulumi install` (Pulumi.yaml: virtualenv .venv; requirements.txt: -e .) create it, so
# Commands never depend on an activated venv or on a machine-specific path.
MESHCA = ".venv/bin/meshca"
PULUMI_PREREQUISITE_FLAGS = [
    "--enable_gcp_iam_roles",
    "--enable_cluster_roles",
    "--enable_cluster_labels",
    "--enable_meshconfig_init",
]


# The kubeconfig is operational (another operator's path, a rotated file): it reaches every
# Command through its environment (KUBECONFIG), never its argv, so a completed step's create
# line stays byte-identical when it changes. asmcli has no KUBECONFIG fallback (it only takes
# --kubeconfig, asmcli/asmcli:3488-3489), so its argv names the variable for the shell.
KUBECONFIG_REF = "$KUBECONFIG"


def shell_join(argv) -> str:
    """``shlex.join``, but KUBECONFIG_REF stays a shell expansion (``"$KUBECONFIG"``)."""
    return " ".join('"$KUBECONFIG"' if a == KUBECONFIG_REF else shlex.quote(a) for a in argv)


def kubectl(cluster: Cluster, *args: str) -> tuple[str, ...]:
    return ("kubectl", "--context", cluster.context, *args)


def asmcli_version(asmcli: Asmcli) -> tuple[str, ...]:
    """``asmcli --version`` compared with the pinned version (meshca/toolversion.py)."""
    return (MESHCA, "tool-version", "--expect", asmcli.version, "--", asmcli.path, "--version")


def asmcli_install(
    asmcli: Asmcli,
    cluster: Cluster,
    *,
    fleet_project: str,
    output_dir: str,
    revision: str,
    ca: str,
    option: str,
    cert_files: dict[str, str] | None,
    prerequisites: str,
    extra_overlays: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """``asmcli install`` for REV1 (ca citadel) or REV2 (ca mesh_ca).

    ``cert_files`` (the four paths) only with ``ca == "citadel"``: asmcli stops with "You must
    select Citadel as the CA in order to use custom certificates" otherwise, and with "Custom
    certificates already exist" when cacerts exists (then pass None).
    """
    if cert_files and ca != "citadel":
        raise ValueError("certificate flags are only valid with --ca citadel")
    argv = [
        asmcli.path,
        "install",
        "--fleet_id",
        fleet_project,
        "--kubeconfig",
        KUBECONFIG_REF,
        "--context",
        cluster.context,
        "--output_dir",
        output_dir,
    ]
    if prerequisites == "asmcli":
        argv.append("--enable_all")
    else:
        # APIs and fleet registration are Pulumi resources (components/fleet_prerequisites.py);
        # asmcli still does what pulumi-gcp cannot express.
        argv += PULUMI_PREREQUISITE_FLAGS
    argv += ["--ca", ca]
    if cert_files:
        argv += [
            "--ca_cert",
            cert_files["ca_cert"],
            "--ca_key",
            cert_files["ca_key"],
            "--root_cert",
            cert_files["root_cert"],
            "--cert_chain",
            cert_files["cert_chain"],
        ]
    argv += ["--option", option]
    for extra in asmcli.extra_options:
        argv += ["--option", extra]
    for overlay in (*asmcli.custom_overlays, *extra_overlays):
        argv += ["--custom_overlay", overlay]
    argv += ["--revision_name", revision]
    return tuple(argv)


def label_namespace(cluster: Cluster, namespace: str, *changes: str) -> tuple[str, ...]:
    """``kubectl label namespace NS k=v k- --overwrite``: one request, so never both labels."""
    return kubectl(cluster, "label", "namespace", namespace, *changes, "--overwrite")


def restart_namespace(cluster: Cluster, namespace: str, revision: str, timeout_seconds: int | None = None) -> tuple[str, ...]:
    """Restart every Deployment, StatefulSet and DaemonSet of a namespace and wait for them.

    ``meshca restart`` runs ``kubectl rollout restart KIND/NAME`` and ``kubectl rollout status``
    for each workload (a plain ``kubectl rollout restart deployment -n NS`` misses
    StatefulSets and DaemonSets), first checks that istiod-REV is ready to inject, and names
    the pods it cannot restart (bare pods, Jobs).
    """
    argv = (MESHCA, "restart", "--context", cluster.context, "--namespace", namespace, "--revision", revision)
    # The timeout is operational: the plan passes it as MESHCA_RESTART_TIMEOUT (environment).
    return argv if timeout_seconds is None else (*argv, "--timeout", f"{timeout_seconds}s")


def preflight(cluster: Cluster, revision: str, gateway_namespaces: tuple[str, ...] = (), no_operator: bool = False) -> tuple[str, ...]:
    """``meshca preflight``: a step's preconditions on the cluster (meshca/preflight.py)."""
    argv = [MESHCA, "preflight", "--context", cluster.context, "--revision", revision]
    for ns in gateway_namespaces:
        argv += ["--gateway-namespace", ns]
    if no_operator:
        argv.append("--no-operator")
    return tuple(argv)


def apply_stdin(cluster: Cluster) -> tuple[str, ...]:
    return kubectl(cluster, "apply", "-f", "-")


def apply_file(cluster: Cluster, path: str) -> tuple[str, ...]:
    return kubectl(cluster, "apply", "-f", path)


def delete_deployment(cluster: Cluster, namespace: str, name: str) -> tuple[str, ...]:
    return kubectl(cluster, "delete", f"deploy/{name}", "-n", namespace, IGNORE_NOT_FOUND)


def delete_istiod(cluster: Cluster, name: str, kinds: str = ISTIOD_KINDS) -> tuple[str, ...]:
    return kubectl(cluster, "delete", kinds, name, "-n", SYSTEM_NS, IGNORE_NOT_FOUND)


def delete_installed_state(cluster: Cluster, *names: str) -> tuple[str, ...]:
    # Newer istioctl no longer writes installed-state-REV: NotFound is expected.
    return kubectl(cluster, "delete", "IstioOperator", *names, "-n", SYSTEM_NS, IGNORE_NOT_FOUND)


def get_secret_yaml(cluster: Cluster, name: str) -> tuple[str, ...]:
    return kubectl(cluster, "get", f"secret/{name}", "-n", SYSTEM_NS, "-o", "yaml")


def delete_ca_secrets(cluster: Cluster) -> tuple[str, ...]:
    return kubectl(cluster, "delete", "secret", "cacerts", "istio-ca-secret", "-n", SYSTEM_NS, "--ignore-not-found")


def restart_control_plane(cluster: Cluster) -> tuple[str, ...]:
    return kubectl(cluster, "rollout", "restart", "deployment", "-n", SYSTEM_NS)


def probe_cacerts(cluster: Cluster) -> tuple[str, ...]:
    """Read the certificates (never the key) of an existing cacerts Secret; nothing if absent."""
    return kubectl(
        cluster,
        "get",
        "secret",
        "cacerts",
        "-n",
        SYSTEM_NS,
        "--ignore-not-found",
        "-o",
        r"jsonpath={.data.ca-cert\.pem} {.data.root-cert\.pem} {.data.cert-chain\.pem}",
    )


def write_citadel_root_overlay(root_cert: str, output: str) -> tuple[str, ...]:
    return (MESHCA, "overlay", "citadel-root", "--root-cert", root_cert, "--output", output)


def drop_mesh_root(cluster: Cluster, revision: str, root_cert: str) -> tuple[str, ...]:
    return (
        MESHCA,
        "mesh-config",
        "drop-root",
        "--context",
        cluster.context,
        "--revision",
        revision,
        "--root-cert",
        root_cert,
    )


def check(cluster: Cluster, kind: str, *flags: str) -> tuple[str, ...]:
    return (MESHCA, "check", kind, "--context", cluster.context, *flags, "--json")


# --------------------------------------------------------------- revision tags and webhooks
# Issue 9 finding 10; sources in tests/test_webhook_tags.py.

# migrate-to-asm's set_default_tag empties the 1.6 injector's webhooks (its patch has no
# "value"; RFC 6902 4.3 requires one for "replace", so the empty list is explicit here).
EMPTY_WEBHOOKS_PATCH = '[{"op": "replace", "path": "/webhooks", "value": []}]'


def webhook_configurations(revision: str) -> tuple[str, str]:
    """(MutatingWebhookConfiguration, ValidatingWebhookConfiguration) a revision's install made.

    Istio 1.6 (revision ``default``, Istio on GKE): ``istio-sidecar-injector`` and the base
    chart's ``istiod-istio-system``; 1.16/1.19 (istio-discovery chart): ``istio-sidecar-injector-REV``
    and ``istio-validator-REV-istio-system``.
    """
    if revision == "default":
        return ("istio-sidecar-injector", f"istiod-{SYSTEM_NS}")
    return (f"istio-sidecar-injector-{revision}", f"istio-validator-{revision}-{SYSTEM_NS}")


def istioctl_version(istioctl: str) -> tuple[str, ...]:
    """istio 1.19 pkg/version/cobra.go: ``--short`` without the control plane prints the version alone."""
    return (istioctl, "version", "--remote=false", "--short")


def tag_set_default(istioctl: str, cluster: Cluster, revision: str) -> tuple[str, ...]:
    return (istioctl, "--context", cluster.context, "tag", "set", "default", "--revision", revision, "--overwrite")


def empty_injector(cluster: Cluster, name: str = "istio-sidecar-injector") -> tuple[str, ...]:
    return kubectl(cluster, "patch", "mutatingwebhookconfiguration", name, "--type", "json", "-p", EMPTY_WEBHOOKS_PATCH)


def delete_webhooks(cluster: Cluster, revision: str) -> tuple[str, ...]:
    mutating, validating = webhook_configurations(revision)
    return kubectl(
        cluster, "delete", f"mutatingwebhookconfiguration/{mutating}", f"validatingwebhookconfiguration/{validating}", IGNORE_NOT_FOUND
    )


def webhook_strays(cluster: Cluster, labels: dict[str, str], namespaces: list[str]) -> tuple[str, ...]:
    argv = [MESHCA, "webhooks", "strays", "--context", cluster.context]
    for k, v in labels.items():
        argv += ["--label", f"{k}={v}"]
    for ns in namespaces:
        argv += ["--namespace", ns]
    return tuple(argv)


def webhook_verify(cluster: Cluster, revision: str) -> tuple[str, ...]:
    return (MESHCA, "webhooks", "verify", "--context", cluster.context, "--revision", revision)


# --------------------------------------------------------------- the canary gateway (finding 9)


def gateway_clone(cluster: Cluster, namespace: str, source: str, service: str, name: str, revision: str) -> tuple[str, ...]:
    return (
        MESHCA, "gateway", "clone", "--context", cluster.context,
        "--namespace", namespace, "--deployment", source, "--service", service, "--name", name, "--revision", revision,
    )


def gateway_ready(cluster: Cluster, namespace: str, deployment: str, service: str, name: str, revision: str, timeout_seconds: int) -> tuple[str, ...]:
    return (
        MESHCA, "gateway", "ready", "--context", cluster.context,
        "--namespace", namespace, "--deployment", deployment, "--service", service, "--name", name, "--revision", revision,
        "--timeout", f"{timeout_seconds}s",
    )
