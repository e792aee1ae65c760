"""``meshca restore-ca --from BACKUP --stack S``: break-glass restore of the phase C backups.

C1 (meshca/providers/ca_secrets.py) saved ``cacerts`` and ``istio-ca-secret`` of each cluster
as ``kubectl get secret/NAME -n istio-system -o yaml`` in 0600 files
``BACKUPDIR/STACK/CLUSTER/NAME.yaml``. This writes them back, after every check passed for
every file (never half-applied):

- the backup reads back (MCA1060): 0600, YAML, a Secret named after its file in istio-system,
  the keys istiod reads (cacerts: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem;
  istio-ca-secret: ca-cert.pem, ca-key.pem), certificates that parse and a key that matches
  ca-cert.pem; a recorded absence is skipped (nothing existed to restore);
- it belongs here (MCA1061): its path names this stack and a cluster of it (``--cluster``, if
  given, must agree), the cluster's ``kube-system`` namespace UID equals the one C1 recorded
  (annotation ``meshca.io/cluster-uid``, when present), and its root is meshca:caFiles.rootCert
  (the Citadel root of this mesh);
- the live Secret is absent, or equal (nothing to do), or ``--replace`` is given (MCA1062).

Then ``kubectl create -f -`` (``replace`` with ``--replace``) with the backup's type and data
(metadata reduced to name, namespace, labels, annotations), and the live Secret is read back
and compared by the digest of its type and data (MCA1063; MCA1064 when equal). No key
material is printed: lines carry paths, key names and digests.
"""

from __future__ import annotations

import argparse
import base64
import json
import stat
import sys
from pathlib import Path

import yaml

from .errors import MeshcaError, MeshcaErrors

SECRETS = {"cacerts": ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"), "istio-ca-secret": ("ca-cert.pem", "ca-key.pem")}
from .providers.ca_secrets import CLUSTER_UID  # noqa: E402  (what C1 records)


def _unreadable(path: Path, problem: str) -> MeshcaError:
    return MeshcaError("RestoreBackupUnreadable", str(path), problem=problem)


def read_backup(path: Path) -> tuple[dict | None, list[MeshcaError]]:
    """(the Secret, problems); (None, []) for a recorded absence."""
    from cryptography.hazmat.primitives import serialization

    from .certs import load_certs

    if not path.is_file():
        return None, [_unreadable(path, "no such backup file")]
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return None, [_unreadable(path, f"mode {oct(mode)}, not 0600: someone else could have read or changed it")]
    try:
        doc = yaml.safe_load(path.read_bytes())
    except yaml.YAMLError as exc:
        return None, [_unreadable(path, f"not YAML ({getattr(exc, 'problem', exc)})")]
    if isinstance(doc, dict) and doc.get("meshca.io/absent"):
        return None, []
    if not isinstance(doc, dict) or doc.get("kind") != "Secret":
        return None, [_unreadable(path, "not a Secret (kind)")]
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if name not in SECRETS or path.stem != name:
        return None, [_unreadable(path, f"holds Secret {name}, not the {path.stem} its file name says (cacerts or istio-ca-secret)")]
    if meta.get("namespace") != "istio-system":
        return None, [_unreadable(path, f"holds a Secret of namespace {meta.get('namespace')}, not istio-system")]
    data = doc.get("data") or {}
    missing = [k for k in SECRETS[name] if not data.get(k)]
    if missing:
        return None, [_unreadable(path, f"Secret {name} lacks {', '.join(missing)}")]
    try:
        raw = {k: base64.b64decode(data[k], validate=True) for k in SECRETS[name]}
        cert = load_certs(raw["ca-cert.pem"])[0]
        key = serialization.load_pem_private_key(raw["ca-key.pem"], password=None)
    except (ValueError, TypeError, IndexError) as exc:
        return None, [_unreadable(path, f"Secret {name}'s certificates or key do not parse ({type(exc).__name__})")]
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        return None, [_unreadable(path, f"Secret {name}'s ca-key.pem does not match its ca-cert.pem")]
    return doc, []


def backup_root(doc: dict) -> bytes:
    data = doc.get("data") or {}
    key = "root-cert.pem" if doc["metadata"]["name"] == "cacerts" else "ca-cert.pem"
    return base64.b64decode(data[key])


def clean(doc: dict) -> dict:
    """What is written back: the type and data, metadata reduced to name, namespace, labels, annotations."""
    meta = doc.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in ("kubectl.kubernetes.io/last-applied-configuration", CLUSTER_UID)}
    out_meta = {"name": meta["name"], "namespace": meta["namespace"]}
    if meta.get("labels"):
        out_meta["labels"] = meta["labels"]
    if annotations:
        out_meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Secret", "metadata": out_meta, "type": doc.get("type") or "Opaque", "data": doc.get("data") or {}}


def backup_files(source: Path) -> list[Path]:
    if source.is_dir():
        return [source / f"{n}.yaml" for n in SECRETS if (source / f"{n}.yaml").exists()]
    return [source]


def judge(config, files: list[Path], cluster_opt: str | None, cluster_uid: str | None) -> tuple[str, list[tuple[Path, dict]], list[MeshcaError]]:
    """(cluster name, [(file, Secret)], problems): every check short of the live Secret (pure but for reading files)."""
    from .certs import colon_fingerprint, fingerprint, load_certs

    problems: list[MeshcaError] = []
    docs: list[tuple[Path, dict]] = []
    names = {c.name for c in config.clusters}
    cluster = cluster_opt
    if not files:
        return cluster or "?", [], [MeshcaError("RestoreBackupUnreadable", "--from", problem="no cacerts.yaml or istio-ca-secret.yaml there")]
    want_root = fingerprint(load_certs(config.ca_files.root_cert.read_bytes())[0])
    for path in files:
        resolved = path.resolve()
        path_cluster, path_stack = resolved.parent.name, resolved.parent.parent.name
        other = lambda problem: MeshcaError("RestoreBackupOtherCluster", str(path), problem=problem, stack=config.stack, cluster=cluster or "CLUSTER")  # noqa: E731
        if path_stack != config.stack:
            problems.append(other(f"its path says stack {path_stack}, not {config.stack} (C1 writes BACKUPDIR/STACK/CLUSTER/NAME.yaml)"))
        if path_cluster not in names:
            problems.append(other(f"its path says cluster {path_cluster}, which is not a cluster of {config.stack} ({', '.join(sorted(names))})"))
        elif cluster is None:
            cluster = path_cluster
        elif path_cluster != cluster:
            problems.append(other(f"its path says cluster {path_cluster}, but it would be restored to {cluster}"))
        doc, errs = read_backup(path)
        problems += errs
        if doc is None:
            continue
        recorded = ((doc.get("metadata") or {}).get("annotations") or {}).get(CLUSTER_UID)
        if recorded and cluster_uid and recorded != cluster_uid:
            problems.append(other(f"it was taken from the cluster whose kube-system UID is {recorded}; this context's is {cluster_uid}"))
        got = fingerprint(load_certs(backup_root(doc))[0])
        if got != want_root:
            problems.append(other(f"its root sha256 {colon_fingerprint(got)} is not meshca:caFiles.rootCert's {colon_fingerprint(want_root)}: another mesh's CA"))
        docs.append((path, doc))
    return cluster or "?", docs, problems


def _live(kubectl, name: str) -> dict | None:
    from .restart import _json, kubectl_reason

    proc = kubectl.run("get", "secret", name, "-n", "istio-system", "--ignore-not-found", "-o", "json")
    if proc.returncode != 0:
        raise kubectl.unreachable(proc) or MeshcaErrors([MeshcaError("RestartListFailed", f"secret/{name}", reason=kubectl_reason(proc))])
    return _json(proc, f"secret {name}") if proc.stdout.strip() else None


def restore(config, source: Path, cluster_opt: str | None, replace: bool, kubectl_for, out=None) -> int:
    out = out or sys.stdout
    from .providers.ca_secrets import secret_data_digest
    from .restart import kubectl_reason

    files = backup_files(source)
    cluster_name, docs, problems = judge(config, files, cluster_opt, None)
    if problems:
        raise MeshcaErrors(problems)
    cluster = next(c for c in config.clusters if c.name == cluster_name)
    kubectl = kubectl_for(cluster)
    proc = kubectl.run("get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}")
    if proc.returncode != 0:
        raise kubectl.unreachable(proc) or MeshcaErrors([MeshcaError("RestartListFailed", "namespace/kube-system", reason=kubectl_reason(proc))])
    _, docs, problems = judge(config, files, cluster_name, proc.stdout.strip())
    plan = []
    for path, doc in docs:
        name = doc["metadata"]["name"]
        live_doc = _live(kubectl, name)
        if live_doc is not None and secret_data_digest(live_doc) == secret_data_digest(doc):
            plan.append((path, doc, "equal"))
        elif live_doc is not None and not replace:
            problems.append(MeshcaError("RestoreLiveDiffers", f"cluster {cluster.name} secret/{name}", secret=name))
        else:
            plan.append((path, doc, "replace" if live_doc is not None else "create"))
    if problems:
        raise MeshcaErrors(problems)
    done = []
    for path, doc, how in plan:
        name = doc["metadata"]["name"]
        if how != "equal":
            proc = kubectl.run(how, "-f", "-", stdin=json.dumps(clean(doc)))
            if proc.returncode != 0:
                raise kubectl.unreachable(proc) or MeshcaErrors([MeshcaError("RestoreReadBackFailed", f"cluster {cluster.name} secret/{name}", secret=name, reason=kubectl_reason(proc))])
        back = _live(kubectl, name)
        if secret_data_digest(back) != secret_data_digest(doc):
            raise MeshcaErrors([MeshcaError("RestoreReadBackFailed", f"cluster {cluster.name} secret/{name}", secret=name, reason="absent" if back is None else "other data")])
        shown = {"equal": "was already equal", "create": "created", "replace": "replaced"}[how]
        done.append(MeshcaError("RestoreDone", f"cluster {cluster.name} secret/{name}", secret=name, how=shown, file=path, digest=secret_data_digest(doc)[:16], stack=config.stack))
    for line in done:
        print(line.line(), file=out)
    return 0


def cmd_restore_ca(args: argparse.Namespace) -> int:
    from .cli import load_config_from_args
    from .kubeaccess import require_cluster_access
    from .restart import Kubectl

    config = load_config_from_args(args)

    def kubectl_for(cluster):
        kubeconfig = cluster.kubeconfig
        if kubeconfig and not Path(kubeconfig).expanduser().is_absolute():
            kubeconfig = str(config.project_dir / kubeconfig)
        require_cluster_access(kubeconfig, cluster.context)
        return Kubectl(kubeconfig, cluster.context)

    return restore(config, Path(args.from_), args.cluster, args.replace, kubectl_for)


DESCRIPTION = (
    "Break-glass: write the phase C backups (cacerts, istio-ca-secret, saved by C1 as 0600 files\n"
    "BACKUPDIR/STACK/CLUSTER/NAME.yaml) back to their cluster. Refuses, before writing anything,\n"
    "a backup that does not read back (MCA1060), one of another cluster or mesh (MCA1061), and a\n"
    "live Secret with other data unless --replace (MCA1062); reads the Secret back afterwards."
)


def register(subparsers) -> None:
    from .cli import add_stack_arguments
    from .help import examples_epilog

    p = subparsers.add_parser("restore-ca", help="break-glass: restore the phase C backups of cacerts and istio-ca-secret",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=examples_epilog(("meshca restore-ca --from backups/dev/dev-1 --stack dev",
                                                      "meshca restore-ca --from backups/prod/prod-2/istio-ca-secret.yaml --stack prod --replace")))
    p.add_argument("--from", dest="from_", required=True, type=Path, metavar="BACKUP", help="a backup file, or the directory BACKUPDIR/STACK/CLUSTER holding both")
    add_stack_arguments(p)
    p.add_argument("--cluster", help="the cluster to restore to (default: the one the backup's path names)")
    p.add_argument("--replace", action="store_true", help="replace a live Secret that holds other data")
    p.set_defaults(func=cmd_restore_ca)
