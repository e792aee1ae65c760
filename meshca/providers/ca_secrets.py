"""Phase C: back up the old CA secrets (0600 file, read back and compared), then delete them
only when every backup still matches the live Secret.

The Secret data (the old CA key) goes to the backup file and nowhere else: never into an
output, a log line or an exception message. Outputs carry paths, key names and digests.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path
from typing import Any, Sequence

import yaml
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ResourceProvider, UpdateResult

from ..errors import MeshcaError
from ..pki import write_private
from meshca.providers.failure import one_line

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi.runtime.rpc.UNKNOWN


def _unknown(value: Any) -> bool:
    """Not known in preview: the dynamic provider host hands ``check`` a ``pulumi.output.Unknown``
    (pulumi sdk/python/lib/pulumi/dynamic/__main__.py ``rpc.deserialize_properties(request.news,
    True)``), never the sentinel string; both are accepted."""
    from pulumi.output import Unknown

    return isinstance(value, Unknown) or value == UNKNOWN


def _run(argv: Sequence[str], timeout: float = 120, kubeconfig: str = "") -> subprocess.CompletedProcess:
    # The kubeconfig is operational: an input the diff ignores, passed as KUBECONFIG.
    env = {**os.environ, "KUBECONFIG": kubeconfig} if kubeconfig else None
    try:
        return subprocess.run(list(argv), capture_output=True, timeout=timeout, check=False, env=env)
    except FileNotFoundError:
        raise RuntimeError(MeshcaError("ToolMissing", argv[0], tool=argv[0]).line()) from None


def _not_found(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode != 0 and b"NotFound" in proc.stderr


def secret_data_digest(doc: dict | None) -> str:
    """A digest of a Secret's type and data only (metadata changes on every read)."""
    if doc is None:
        return "absent"
    payload = yaml.safe_dump({"type": doc.get("type"), "data": doc.get("data") or {}}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def read_live_secret(get_argv: Sequence[str], kubeconfig: str = "") -> dict | None:
    """The live Secret (as parsed YAML) or None when it does not exist."""
    proc = _run(get_argv, kubeconfig=kubeconfig)
    if _not_found(proc):
        return None
    if proc.returncode != 0:
        # kubectl's stderr names the object and the reason, never the data.
        raise RuntimeError(MeshcaError("CaSecretReadFailed", " ".join(get_argv[-5:]), reason=proc.stderr.decode(errors="replace").strip()[:200]).line())
    return yaml.safe_load(proc.stdout)


def resolve(props: dict, file: str) -> Path:
    """Backup paths are relative to the project directory (where pulumi runs)."""
    path = Path(file)
    return path if path.is_absolute() else Path(props.get("projectDir") or ".") / path


def read_backup(path: Path) -> dict | None:
    """The Secret saved in a backup file (None for a recorded absence); checks 0600."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise RuntimeError(MeshcaError("CaBackupInsecure", str(path), mode=oct(mode)).line())
    doc = yaml.safe_load(path.read_bytes())
    if isinstance(doc, dict) and doc.get("meshca.io/absent"):
        return None
    return doc


def _diff(olds: dict, news: dict, identity: tuple[str, ...], operational: tuple[str, ...]) -> DiffResult:
    replaces = [k for k in identity if news.get(k) == UNKNOWN or olds.get(k) != news.get(k)]
    changed = replaces + [k for k in operational if olds.get(k) != news.get(k)]
    return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)


def _keep(olds: dict, news: dict, refreshed: tuple[str, ...]) -> dict:
    """The completed step's outputs, with its operational inputs refreshed; nothing runs."""
    outs = {k: v for k, v in olds.items() if k != "__provider"}
    outs.update({k: news[k] for k in refreshed if k in news})
    return outs


CLUSTER_UID = "meshca.io/cluster-uid"  # read by meshca restore-ca (meshca/restoreca.py)


def cluster_uid(get_argv: Sequence[str], kubeconfig: str = "") -> str | None:
    """The UID of the cluster's kube-system namespace (what tells one cluster from another: it
    never changes while the cluster lives), with the backup's own kubectl flags; None when it
    cannot be read (the backup is still made; restore-ca then judges by path and root)."""
    argv = list(get_argv)
    if "get" not in argv:
        return None
    proc = _run(argv[: argv.index("get")] + ["get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}"], kubeconfig=kubeconfig)
    uid = proc.stdout.decode(errors="replace").strip() if proc.returncode == 0 else ""
    return uid or None


class CaSecretBackupProvider(ResourceProvider):
    """Saves one Secret with ``kubectl get secret/NAME -n istio-system -o yaml`` (the plan's
    argv) to a 0600 file, reads the file back and compares it with what kubectl returned."""

    def check(self, olds: dict, news: dict) -> CheckResult:
        failures = []
        for key in ("cluster", "secret", "file"):
            value = news.get(key)
            if not _unknown(value) and not value:
                failures.append(CheckFailure(key, f"{key} is required"))
        argv = news.get("argv")
        if not _unknown(argv) and (not isinstance(argv, list) or argv[:1] != ["kubectl"] or f"secret/{news.get('secret')}" not in argv):
            failures.append(CheckFailure("argv", "argv must be the plan's `kubectl ... get secret/NAME -n istio-system -o yaml`"))
        return CheckResult(news, failures)

    @one_line
    def create(self, props: dict[str, Any]) -> CreateResult:
        path = resolve(props, props["file"])
        doc = read_live_secret(props["argv"], props.get("kubeconfig") or "")
        previous = read_backup(path) if path.exists() else None
        if previous is not None and secret_data_digest(previous) != secret_data_digest(doc):
            if doc is None:
                # C2 already ran: the existing backup is the only copy of the old CA.
                doc = previous
            else:
                raise RuntimeError(MeshcaError("CaBackupExists", str(path), secret=props["secret"]).line())
        if previous is None or secret_data_digest(previous) != secret_data_digest(doc):
            if doc is None:
                # Record the absence, so the deletion knows this secret was looked at.
                write_private(path, yaml.safe_dump({"meshca.io/absent": True, "secret": props["secret"]}).encode())
            else:
                # Which cluster it came from, for restore-ca (metadata only: the data digest,
                # which C2 and restore-ca compare, is unchanged).
                uid = cluster_uid(props["argv"], props.get("kubeconfig") or "")
                if uid:
                    meta = doc.setdefault("metadata", {})
                    meta["annotations"] = {**(meta.get("annotations") or {}), CLUSTER_UID: uid}
                write_private(path, yaml.safe_dump(doc, sort_keys=True).encode())
        saved = read_backup(path)
        if secret_data_digest(saved) != secret_data_digest(doc):
            path.unlink(missing_ok=True)
            raise RuntimeError(MeshcaError("CaBackupMismatch", str(path), secret=props["secret"]).line())
        outs = {
            **{k: v for k, v in props.items() if k != "__provider"},
            "present": doc is not None,
            "keys": sorted((doc or {}).get("data", {}) or {}),
            "dataSha256": secret_data_digest(doc),
            "fileSha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "mode": "0600",
        }
        return CreateResult(id_=f"{props['cluster']}/{props['secret']}", outs=outs)

    def diff(self, _id: str, olds: dict, news: dict) -> DiffResult:
        # What is backed up (cluster, secret) replaces; where and how it is reached (projectDir,
        # kubeconfig, the argv's form, the backup directory) never re-runs a completed backup
        # (issue 9 finding 8): the update keeps every output.
        return _diff(olds, news, ("cluster", "secret"), ("file", "argv", "projectDir", "kubeconfig"))

    @one_line
    def update(self, _id: str, olds: dict, news: dict) -> UpdateResult:
        return UpdateResult(_keep(olds, news, ("argv", "projectDir", "kubeconfig")))

    @one_line
    def delete(self, _id: str, props: dict) -> None:
        # The backup outlives the resource: it is the only copy of the old CA once C2 ran.
        return None


class CaSecretDeletionProvider(ResourceProvider):
    """Deletes cacerts and istio-ca-secret (the plan's argv) only when each backup file exists,
    is 0600, still has the digest recorded when it was made, and equals the live Secret."""

    def check(self, olds: dict, news: dict) -> CheckResult:
        failures = []
        backups = news.get("backups")
        if not _unknown(backups):
            if not isinstance(backups, list) or not backups:
                failures.append(CheckFailure("backups", MeshcaError("CaDeletionWithoutBackup", "backups").line()))
            else:
                for b in backups:
                    if _unknown(b) or not isinstance(b, dict):
                        continue
                    if b.get("fileSha256") in (None, "") and not _unknown(b.get("fileSha256")):
                        failures.append(CheckFailure("backups", MeshcaError("CaDeletionWithoutBackup", f"backup of {b.get('secret')}").line()))
        argv = news.get("argv")
        if not _unknown(argv) and (not isinstance(argv, list) or "delete" not in argv or "secret" not in argv):
            failures.append(CheckFailure("argv", "argv must be the plan's `kubectl ... delete secret cacerts istio-ca-secret -n istio-system`"))
        return CheckResult(news, failures)

    @one_line
    def create(self, props: dict[str, Any]) -> CreateResult:
        verified = []
        for backup in props["backups"]:
            path = resolve(props, backup["file"])
            secret = backup["secret"]
            if not path.exists():
                raise RuntimeError(MeshcaError("CaDeletionWithoutBackup", str(path)).line())
            if hashlib.sha256(path.read_bytes()).hexdigest() != backup["fileSha256"]:
                raise RuntimeError(MeshcaError("CaBackupChanged", str(path), secret=secret).line())
            saved = read_backup(path)
            live = read_live_secret(backup["getArgv"], props.get("kubeconfig") or "")
            if secret_data_digest(saved) != secret_data_digest(live):
                raise RuntimeError(MeshcaError("CaBackupStale", str(path), secret=secret).line())
            verified.append(secret)
        proc = _run(props["argv"], kubeconfig=props.get("kubeconfig") or "")
        if proc.returncode != 0:
            raise RuntimeError(MeshcaError("CaSecretDeleteFailed", "kubectl delete secret", reason=proc.stderr.decode(errors="replace").strip()[:200]).line())
        outs = {k: v for k, v in props.items() if k != "__provider"}
        outs["verifiedBackups"] = verified
        return CreateResult(id_=f"{props['cluster']}/ca-secrets-deleted", outs=outs)

    def diff(self, _id: str, olds: dict, news: dict) -> DiffResult:
        # Without a diff the engine would update on any input change, and the SDK's default
        # update returns no outputs (pulumi/dynamic/dynamic.py, __main__.py Update): a new
        # project directory would wipe verifiedBackups (issue 9 finding 8). The deletion ran;
        # only another cluster is another deletion.
        return _diff(olds, news, ("cluster",), ("argv", "backups", "projectDir", "kubeconfig"))

    @one_line
    def update(self, _id: str, olds: dict, news: dict) -> UpdateResult:
        return UpdateResult(_keep(olds, news, ("argv", "backups", "projectDir", "kubeconfig")))

    @one_line
    def delete(self, _id: str, props: dict) -> None:
        # Deleting this resource (destroy, rollback of the program) never restores or
        # re-deletes anything: restoring the old CA is a deliberate `kubectl apply -f BACKUP`.
        return None

