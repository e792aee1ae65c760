"""Phase C providers: 0600 backups read back and compared; deletion only over matching backups."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from meshca import pki
from meshca.providers.ca_secrets import CaSecretBackupProvider, CaSecretDeletionProvider

FAKE = Path(__file__).parent / "fakes" / "workloads"
KC = ["kubectl", "--kubeconfig", "kc.yaml", "--context", "ctx"]


@pytest.fixture()
def cluster(tmp_path, monkeypatch):
    root, ca = pki.citadel_ca("backup-test")
    key_pem = ca.key_pem
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cacerts", "namespace": "istio-system", "resourceVersion": "1"},
        "type": "Opaque",
        "data": {"ca-key.pem": base64.b64encode(key_pem).decode(), "ca-cert.pem": base64.b64encode(ca.cert_pem).decode()},
    }
    state = {"secrets": {"cacerts": secret}}
    (tmp_path / "state.json").write_text(json.dumps(state))
    (tmp_path / "calls.log").write_text("")
    monkeypatch.setenv("PATH", f"{FAKE}:{os.environ['PATH']}")
    monkeypatch.setenv("MESHCA_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("MESHCA_FAKE_LOG", str(tmp_path / "calls.log"))
    return tmp_path, key_pem


def backup_props(tmp_path, secret="cacerts"):
    return {
        "cluster": "c1",
        "secret": secret,
        "file": f"backups/c1/{secret}.yaml",
        "projectDir": str(tmp_path),
        "argv": KC + ["get", f"secret/{secret}", "-n", "istio-system", "-o", "yaml"],
    }


def deletion_props(tmp_path, backups):
    return {
        "cluster": "c1",
        "projectDir": str(tmp_path),
        "argv": KC + ["delete", "secret", "cacerts", "istio-ca-secret", "-n", "istio-system", "--ignore-not-found"],
        "backups": [
            {"secret": b["secret"], "file": b["file"], "fileSha256": b["fileSha256"], "getArgv": b["argv"]} for b in backups
        ],
    }


def leaks(blob: str, key_pem: bytes) -> bool:
    body = b"".join(key_pem.splitlines()[1:-1]).decode()
    return body[:40] in blob or base64.b64encode(key_pem).decode()[:40] in blob


def test_backup_is_0600_read_back_and_its_outputs_hold_no_key(cluster):
    tmp_path, key_pem = cluster
    result = CaSecretBackupProvider().create(backup_props(tmp_path))
    path = tmp_path / "backups/c1/cacerts.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert result.outs["present"] is True and result.outs["keys"] == ["ca-cert.pem", "ca-key.pem"]
    assert not leaks(json.dumps(result.outs), key_pem)
    assert base64.b64encode(key_pem).decode() in path.read_text()  # the backup itself is complete


def test_absent_secret_is_recorded_as_absent(cluster):
    tmp_path, _ = cluster
    result = CaSecretBackupProvider().create(backup_props(tmp_path, "istio-ca-secret"))
    assert result.outs["present"] is False


def test_deletion_runs_only_over_backups_that_still_match(cluster):
    tmp_path, _ = cluster
    backups = [{**backup_props(tmp_path, s), **CaSecretBackupProvider().create(backup_props(tmp_path, s)).outs} for s in ("cacerts", "istio-ca-secret")]
    result = CaSecretDeletionProvider().create(deletion_props(tmp_path, backups))
    assert result.outs["verifiedBackups"] == ["cacerts", "istio-ca-secret"]
    assert json.loads((tmp_path / "state.json").read_text())["secrets"] == {}
    calls = [json.loads(x) for x in (tmp_path / "calls.log").read_text().splitlines()]
    assert calls[-1] == KC[1:] + ["delete", "secret", "cacerts", "istio-ca-secret", "-n", "istio-system", "--ignore-not-found"]


def test_deletion_refuses_without_a_backup_file(cluster):
    tmp_path, _ = cluster
    fake = [{**backup_props(tmp_path), "fileSha256": "0" * 64}]
    with pytest.raises(RuntimeError, match=r"^Error MCA0805 "):
        CaSecretDeletionProvider().create(deletion_props(tmp_path, fake))
    assert "cacerts" in json.loads((tmp_path / "state.json").read_text())["secrets"]


def test_deletion_refuses_when_the_live_secret_changed_since_the_backup(cluster):
    tmp_path, _ = cluster
    backups = [{**backup_props(tmp_path), **CaSecretBackupProvider().create(backup_props(tmp_path)).outs}]
    state = json.loads((tmp_path / "state.json").read_text())
    state["secrets"]["cacerts"]["data"]["extra.pem"] = "eA=="
    (tmp_path / "state.json").write_text(json.dumps(state))
    with pytest.raises(RuntimeError, match=r"^Error MCA0807 "):
        CaSecretDeletionProvider().create(deletion_props(tmp_path, backups))


def test_deletion_refuses_a_tampered_or_world_readable_backup(cluster):
    tmp_path, _ = cluster
    backups = [{**backup_props(tmp_path), **CaSecretBackupProvider().create(backup_props(tmp_path)).outs}]
    path = tmp_path / "backups/c1/cacerts.yaml"
    os.chmod(path, 0o644)
    with pytest.raises(RuntimeError, match=r"^Error MCA0804 "):
        CaSecretDeletionProvider().create(deletion_props(tmp_path, backups))
    os.chmod(path, 0o600)
    with open(path, "a") as fh:
        fh.write("# edited\n")
    with pytest.raises(RuntimeError, match=r"^Error MCA0806 "):
        CaSecretDeletionProvider().create(deletion_props(tmp_path, backups))


def test_a_rerun_after_deletion_keeps_the_backup_and_never_overwrites_another(cluster):
    tmp_path, key_pem = cluster
    first = CaSecretBackupProvider().create(backup_props(tmp_path)).outs
    CaSecretDeletionProvider().create(deletion_props(tmp_path, [{**backup_props(tmp_path), **first}]))
    again = CaSecretBackupProvider().create(backup_props(tmp_path)).outs  # secret is gone now
    assert again["present"] is True and again["fileSha256"] == first["fileSha256"]
    # A different live Secret never replaces an existing backup.
    state = json.loads((tmp_path / "state.json").read_text())
    state["secrets"]["cacerts"] = {"kind": "Secret", "type": "Opaque", "data": {"ca-cert.pem": "bmV3"}}
    (tmp_path / "state.json").write_text(json.dumps(state))
    with pytest.raises(RuntimeError, match=r"^Error MCA0809 "):
        CaSecretBackupProvider().create(backup_props(tmp_path))


def test_check_refuses_a_deletion_without_backups_and_copes_with_unknowns():
    from pulumi.runtime.rpc import UNKNOWN

    failures = CaSecretDeletionProvider().check({}, {"backups": [], "argv": ["kubectl", "delete", "secret"]}).failures
    assert [f.property for f in failures] == ["backups"]
    assert CaSecretDeletionProvider().check({}, {"backups": UNKNOWN, "argv": UNKNOWN}).failures == []
    assert CaSecretBackupProvider().check({}, {"cluster": UNKNOWN, "secret": "cacerts", "file": UNKNOWN, "argv": UNKNOWN}).failures == []


@pytest.mark.parametrize("provider", [CaSecretBackupProvider, CaSecretDeletionProvider])
def test_providers_survive_the_engines_dill_round_trip(provider):
    blob = serialize_provider(provider())
    again = dill.loads(base64.b64decode(blob))
    assert type(again).__name__ == provider.__name__
    assert len(blob) < 400  # pickled by reference: the module is importable, nothing captured


def test_a_refused_read_is_coded_and_writes_no_backup(cluster):
    tmp_path, key_pem = cluster
    state = json.loads((tmp_path / "state.json").read_text())
    state["deny"] = ["get secret/cacerts"]
    (tmp_path / "state.json").write_text(json.dumps(state))
    with pytest.raises(RuntimeError, match=r"^Error MCA0802 ") as info:
        CaSecretBackupProvider().create(backup_props(tmp_path))
    assert "Forbidden" in str(info.value) and not leaks(str(info.value), key_pem)
    assert not (tmp_path / "backups").exists()


def test_a_backup_that_reads_back_different_is_removed(cluster, monkeypatch):
    """Disk full or a concurrent writer: the file read back is not what kubectl returned."""
    from meshca.providers import ca_secrets

    tmp_path, key_pem = cluster
    real = ca_secrets.write_private
    monkeypatch.setattr(ca_secrets, "write_private", lambda path, data: real(path, data[: len(data) // 2]))
    with pytest.raises(RuntimeError, match=r"^Error MCA0803 ") as info:
        CaSecretBackupProvider().create(backup_props(tmp_path))
    assert not (tmp_path / "backups/c1/cacerts.yaml").exists()
    assert not leaks(str(info.value), key_pem)


def test_a_refused_deletion_is_coded_and_keeps_secrets_and_backups(cluster):
    tmp_path, key_pem = cluster
    backups = [{**backup_props(tmp_path, s), **CaSecretBackupProvider().create(backup_props(tmp_path, s)).outs} for s in ("cacerts", "istio-ca-secret")]
    state = json.loads((tmp_path / "state.json").read_text())
    state["deny"] = ["delete secret"]
    (tmp_path / "state.json").write_text(json.dumps(state))
    with pytest.raises(RuntimeError, match=r"^Error MCA0808 kubectl delete secret: Error from server \(Forbidden\)"):
        CaSecretDeletionProvider().create(deletion_props(tmp_path, backups))
    assert "cacerts" in json.loads((tmp_path / "state.json").read_text())["secrets"]
    assert (tmp_path / "backups/c1/cacerts.yaml").exists() and stat.S_IMODE((tmp_path / "backups/c1/cacerts.yaml").stat().st_mode) == 0o600
