"""The catalogue of malformed inputs: ONE table the hardening tests parametrize over.

Each case says what it breaks, how to build the input, the MCA code it must get and the key or
file that line must name. Areas:

- ``stack-config``: a copy of a shipped ``Pulumi.<stack>.yaml`` with one thing wrong. Refused
  by ``meshca plan --config`` (exit 2, one coded line, no process started) AND by the Pulumi
  program under mocks (nothing registered, no invoke). ``program`` is empty when the program
  runs the case too, else it says why it cannot (the engine reads the file, not the program).
- ``ca-files``: the four Citadel files (real X.509 from a fresh RSA CA) with one thing wrong.
  Refused by ``meshca certs verify``; ``via_stack`` cases also by ``meshca plan`` and the
  program with a stack pointing at them (the stack's pre-flight has no expiry margin).
- ``reference-file``: a bad ``--citadel-root``/``--meshca-root``/``--root-cert`` file of
  ``meshca check`` (exit 2, one line, neither kubectl nor istioctl run).
- ``proxy-dump``: a malformed secret dump of ONE pod, read with ``meshca check --source
  istioctl`` from the fake cluster: that pod is ``error`` with its own code in the JSON
  ``reason``, the run exits 1, every other pod is judged as usual.

One code per kind of malformation, and a kind never spans two codes (tested).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cryptography.hazmat.primitives import serialization

AREAS = ("stack-config", "ca-files", "reference-file", "proxy-dump")
REV1 = "asm-11910-9-distribute-root"
REV2 = "asm-11910-9-meshca-ca-migration"
ROLES = ("ca_cert", "ca_key", "root_cert", "cert_chain")
CANONICAL = {"ca_cert": "ca-cert.pem", "ca_key": "ca-key.pem", "root_cert": "root-cert.pem", "cert_chain": "cert-chain.pem"}
CONFIG_FIELD = {"ca_cert": "caCert", "ca_key": "caKey", "root_cert": "rootCert", "cert_chain": "certChain"}


@dataclass(frozen=True)
class Case:
    area: str
    name: str
    kind: str  # the kind of malformation; one code per kind
    code: str  # the MCA code the one line must carry
    subject: str  # the key or file named; {placeholders} are filled from the built input
    build: Callable[..., Any] = field(repr=False, compare=False)
    stack: str = "dev"  # stack-config: the shipped stack copied
    program: str = ""  # stack-config: why the Pulumi program cannot see this input ("" = it runs)
    via_stack: bool = True  # ca-files: also through a stack config (plan + program)
    argv: tuple[str, ...] = ()  # extra CLI arguments
    check: str = "root-cert"  # proxy-dump: which check reads the dump

    @property
    def id(self) -> str:
        return f"{self.area}:{self.name}"


# ============================================================================ stack configs


def _set(key: str, value: Any) -> Callable[[dict], None]:
    def mutate(c: dict) -> None:
        c[f"meshca:{key}"] = value

    return mutate


def _drop(key: str) -> Callable[[dict], None]:
    def mutate(c: dict) -> None:
        del c[f"meshca:{key}"]

    return mutate


def _all(*fns: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(c: dict) -> None:
        for fn in fns:
            fn(c)

    return mutate


def _namespaces(fn: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(c: dict) -> None:
        fn(c["meshca:namespaces"])

    return mutate


def _remap(old: str, new: str) -> Callable[[dict], None]:
    """Every namespace on ``old`` moves to ``new`` (so only the case's own change is wrong)."""

    def move(entry: Any) -> Any:
        if isinstance(entry, dict):
            return {**entry, "revision": new} if entry.get("revision") == old else entry
        return new if entry == old else entry

    def mutate(c: dict) -> None:
        c["meshca:namespaces"] = {k: move(v) for k, v in c["meshca:namespaces"].items()}

    return mutate


def _cluster(i: int, fn: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(c: dict) -> None:
        fn(c["meshca:clusters"][i])

    return mutate


def _batches(extra: list[str] | None = None, drop: str | None = None) -> Callable[[dict], None]:
    def mutate(c: dict) -> None:
        names = [n for n in c["meshca:namespaces"] if n != drop] + (extra or [])
        c["meshca:batches"] = [names[i : i + 3] for i in range(0, len(names), 3)]
        c.pop("meshca:batchSize", None)

    return mutate


def _stack(stack: str, mutate: Callable[[dict], None]) -> Callable[[Path], Path]:
    """Build a mutated copy of a shipped stack in a project copy; returns the stack file."""

    def build(directory: Path) -> Path:
        from hardening import stack_copy

        return stack_copy(directory, stack, mutate)

    return build


def _file(write: Callable[[Path], Path]) -> Callable[[Path], Path]:
    def build(directory: Path) -> Path:
        return write(directory)

    return build


def _truncated_yaml(directory: Path) -> Path:
    from hardening import ROOT, project_copy

    project_copy(directory)
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    cut = text.index("  meshca:caFiles:")
    path = directory / "Pulumi.dev.yaml"
    path.write_text(text[:cut] + "  meshca:caFiles: {caCert: samples/certs/ca-cert.pem,\n")  # a write cut short
    return path


def _missing_stack_file(directory: Path) -> Path:
    from hardening import project_copy

    project_copy(directory)
    return directory / "Pulumi.qa.yaml"


def _no_project_file(directory: Path) -> Path:
    from hardening import stack_copy

    path = stack_copy(directory, "dev")
    (directory / "Pulumi.yaml").unlink()
    return path


def _overlay_with_ca_certificates(directory: Path) -> Path:
    """A custom overlay listing a root in meshConfig.caCertificates (issue 9 finding 14)."""
    from hardening import ROOT, stack_copy

    path = stack_copy(directory, "dev", lambda c: c.update({"meshca:customOverlays": ["overlays/extra-roots.yaml"]}))
    pem = "".join("          " + line + "\n" for line in (ROOT / "samples" / "certs" / "root-cert.pem").read_text().strip().splitlines())
    (directory / "overlays" / "extra-roots.yaml").write_text(
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  meshConfig:\n    caCertificates:\n      - pem: |\n" + pem
    )
    return path


def _duplicate_namespace(directory: Path) -> Path:
    from hardening import stack_copy

    path = stack_copy(directory, "dev")
    text = path.read_text()
    path.write_text(text.replace("    ads: default\n", "    ads: default\n    cart: default\n"))
    return path


def _config_case(name: str, kind: str, code: str, subject: str, mutate=None, *, stack: str = "dev", write=None, program: str = "", argv=()) -> Case:
    build = _file(write) if write else _stack(stack, mutate)
    return Case("stack-config", name, kind, code, subject, build, stack=stack, program=program, argv=tuple(argv))


_ENGINE_READS_FILE = "pulumi reads the stack file itself; the program only ever sees a parsed config map"
LONG_REV = "asm-" + "x" * 53  # 57 characters

STACK_CONFIG: tuple[Case, ...] = (
    _config_case("stack file missing", "stack file not found", "MCA0100", "{stack_file}", write=_missing_stack_file, program=_ENGINE_READS_FILE),
    _config_case("stack file cut short", "stack file not YAML", "MCA0101", "{stack_file}", write=_truncated_yaml, program=_ENGINE_READS_FILE),
    _config_case("misspelt key", "unknown key", "MCA0102", "meshca:rollbak", _set("rollbak", True)),
    _config_case("unknown cluster field", "unknown key", "MCA0102", "meshca:clusters[0].zone", _cluster(0, lambda cl: cl.update(zone="a"))),
    _config_case("unknown caFiles field", "unknown key", "MCA0102", "meshca:caFiles.caBundle", lambda c: c["meshca:caFiles"].update(caBundle="x.pem")),
    _config_case("fleet project missing", "missing key", "MCA0103", "meshca:fleetProject", _drop("fleetProject")),
    _config_case("cluster without context", "missing key", "MCA0103", "meshca:clusters[0].context", _cluster(0, lambda cl: cl.pop("context"))),
    _config_case("caFiles without certChain", "missing key", "MCA0103", "meshca:caFiles.certChain", lambda c: c["meshca:caFiles"].pop("certChain")),
    _config_case("rollback not a boolean", "wrong type", "MCA0104", "meshca:rollback", _set("rollback", "maybe")),
    _config_case("batchSize not a number", "wrong type", "MCA0104", "meshca:batchSize", _set("batchSize", "three")),
    _config_case("namespaces as a list", "wrong type", "MCA0104", "meshca:namespaces", _set("namespaces", ["frontend", "cart"])),
    _config_case("clusters as a mapping", "wrong type", "MCA0104", "meshca:clusters", _set("clusters", {"name": "dev-1"})),
    _config_case("overlay list with a number", "wrong type", "MCA0104", "meshca:customOverlays", _set("customOverlays", [7])),
    _config_case("unknown use case", "value not allowed", "MCA0105", "meshca:useCase", _set("useCase", "migrate-all")),
    _config_case("unknown phase", "value not allowed", "MCA0105", "meshca:phase", _set("phase", "phase-b")),
    _config_case("secure value", "secret in config", "MCA0106", "meshca:fleetProject", _set("fleetProject", {"secure": "v1:AAABAC3uXxMVk1Hq"})),
    _config_case("project file missing", "no Pulumi.yaml", "MCA0107", "{stack_file}", write=_no_project_file, program=_ENGINE_READS_FILE),
    _config_case(
        "unknown stack name", "stack name unknown", "MCA0108", "--stack qa", write=lambda d: _missing_stack_file(d),
        program="a stack name selects a file before any program runs", argv=("--stack", "qa", "--project-dir", "{project_dir}"),
    ),
    _config_case("PEM text instead of a path", "PEM text in config", "MCA0109", "meshca:caFiles", lambda c: c["meshca:caFiles"].update(caKey="-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n")),
    _config_case("revision with underscore and dot", "revision not DNS-1035", "MCA0110", "meshca:rev2", _set("rev2", "ASM_1.19")),
    _config_case("revision starting with a digit", "revision not DNS-1035", "MCA0110", "meshca:rev1", _all(_set("rev1", "11910-distribute"), _remap(REV1, "11910-distribute"))),
    _config_case("revision of 57 characters", "revision too long", "MCA0111", "meshca:rev2", _set("rev2", LONG_REV)),
    _config_case("rev2 equal to rev1", "revisions not distinct", "MCA0112", "meshca:rev2", _set("rev2", REV1)),
    _config_case("migrate from a labelled revision", "migrate not from default", "MCA0113", "meshca:oldRevision", _all(_set("oldRevision", "asm-1169-3"), _remap("default", "asm-1169-3"))),
    _config_case("upgrade from default", "upgrade from default", "MCA0114", "meshca:oldRevision", _all(_set("oldRevision", "default"), _remap("asm-1169-3", "default")), stack="csm116"),
    _config_case("clusters in two projects", "clusters in several projects", "MCA0120", "meshca:clusters", _cluster(1, lambda cl: cl.update(project="other-project")), stack="staging"),
    _config_case("two clusters with one name", "duplicate cluster", "MCA0121", "meshca:clusters", _cluster(1, lambda cl: cl.update(name="staging-east")), stack="staging"),
    _config_case("no clusters", "empty cluster list", "MCA0122", "meshca:clusters", _set("clusters", [])),
    _config_case("namespace on an undeclared revision", "namespace on undeclared revision", "MCA0130", "meshca:namespaces.cart", _namespaces(lambda n: n.update(cart="asm-1180-1"))),
    _config_case(
        "phase B while a namespace is on the old revision", "phase contradicts namespace map", "MCA0131", "meshca:phase",
        _all(_set("phase", "mesh-ca"), _remap("default", REV1), _namespaces(lambda n: n.update(ads="default"))),
    ),
    _config_case(
        "phase C while a namespace is on REV1", "phase contradicts namespace map", "MCA0131", "meshca:phase",
        _all(_set("phase", "old-root-removed"), _remap("default", REV2), _remap(REV1, REV2), _namespaces(lambda n: n.update(cart=REV1))),
    ),
    _config_case("rollback at baseline", "rollback not available", "MCA0132", "meshca:rollback", _all(_set("phase", "baseline"), _remap(REV1, "default"), _set("rollback", True))),
    _config_case("batch names an unknown namespace", "batch names unknown namespace", "MCA0133", "meshca:batches[4]", _batches(extra=["ghost"])),
    _config_case("batches miss a namespace", "batches incomplete", "MCA0134", "meshca:batches", _batches(drop="ads")),
    _config_case(
        "batches beside batchSize", "batches and batchSize both set", "MCA1000", "meshca:batchSize",
        lambda c: c.update({"meshca:batches": [list(c["meshca:namespaces"])]}),
    ),
    _config_case("namespace name with capitals", "namespace name invalid", "MCA0135", "meshca:namespaces.Bad_NS", _namespaces(lambda n: n.update(Bad_NS="default"))),
    _config_case("kube-system listed", "system namespace listed", "MCA0136", "meshca:namespaces.kube-system", _namespaces(lambda n: n.update({"kube-system": "default"}))),
    _config_case(
        "both injection labels", "both injection labels", "MCA0137", "meshca:namespaces.ads.labels.istio-injection",
        _namespaces(lambda n: n.update(ads={"revision": "default", "labels": {"istio-injection": "enabled"}})),
    ),
    _config_case("gateway with a bad service account", "gateway service account invalid", "MCA0145", "meshca:gateways[0].serviceAccount", lambda c: c["meshca:gateways"][0].update(serviceAccount="Ingress SA")),
    _config_case("gateway selector without app", "gateway selector invalid", "MCA0146", "meshca:gateways[0].labels", lambda c: c["meshca:gateways"][0].update(labels={"istio": "ingressgateway"})),
    _config_case("gateway selector with a revision label", "gateway selector names a revision", "MCA0147", "meshca:gateways[0].labels", lambda c: c["meshca:gateways"][0].update(labels={"app": "istio-ingressgateway", "istio.io/rev": REV1})),
    _config_case("gateway on an undeclared cluster", "gateway cluster unknown", "MCA0148", "meshca:gateways[0].clusters", lambda c: c["meshca:gateways"][0].update(clusters=["dev-9"])),
    _config_case("gateway declared twice", "gateway declared twice", "MCA0149", "meshca:gateways[1]", lambda c: c["meshca:gateways"].append(dict(c["meshca:gateways"][0]))),
    _config_case("gateway Deployment name with capitals", "gateway deployment invalid", "MCA0150", "meshca:gateways[0].deployment", lambda c: c["meshca:gateways"][0].update(deployment="Ingress")),
    _config_case("extra namespace label too long", "namespace label invalid", "MCA0151", "meshca:namespaces.ads.labels.team", _namespaces(lambda n: n.update(ads={"revision": "default", "labels": {"team": "x" * 64}}))),
    _config_case("namespace declared twice", "namespace declared twice", "MCA0141", "meshca:namespaces.cart", write=_duplicate_namespace, program="pulumi's YAML reader refuses duplicate keys; the program gets one map"),
    _config_case("gate poll of 0 seconds", "value out of range", "MCA0142", "meshca:gatePollSeconds", _set("gatePollSeconds", 0)),
    _config_case("overlay file missing", "overlay file missing", "MCA0143", "overlays/missing.yaml", _set("customOverlays", ["overlays/missing.yaml"])),
    _config_case("Mesh CA reference root missing", "meshca root file missing", "MCA0153", "meshca:meshcaRoot", _set("meshcaRoot", "certs/missing-meshca-root.pem")),
    _config_case("upstream stack of another project", "upstream stack form invalid", "MCA0159", "meshca:upstreamStack", _set("upstreamStack", "organization/other-project/dev")),
    _config_case("migration option as an extra option", "migration option as extra", "MCA0144", "meshca:extraOptions", _set("extraOptions", ["ca-migration-citadel"])),
    _config_case("overlay listing caCertificates", "overlay sets caCertificates", "MCA0152", "overlays/extra-roots.yaml", write=_overlay_with_ca_certificates),
)


# ============================================================================ CA files


class CertKit:
    """Real X.509 for the certificate cases: a fresh RSA CA (root + intermediate) per session,
    plus the odd certificates the cases need, made on first use."""

    def __init__(self) -> None:
        from meshca import pki

        self.pki = pki
        self.now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self.start = self.now - dt.timedelta(days=1)
        self.root = pki.make_root("Root CA", org="meshca-bad-inputs", not_before=self.start, days=3650)
        self.ca = pki.make_intermediate("Intermediate CA", self.root, org="meshca-bad-inputs", not_before=self.start, days=3000)

    def _inter(self, **kw):
        kw.setdefault("not_before", self.start)
        kw.setdefault("days", 3000)
        return self.pki.make_intermediate("Intermediate CA", self.root, org="meshca-bad-inputs", **kw)

    @functools.cached_property
    def other(self):
        root = self.pki.make_root("Root CA", org="someone-else", not_before=self.start, days=3650)
        return root, self.pki.make_intermediate("Intermediate CA", root, org="someone-else", not_before=self.start, days=3000)

    @functools.cached_property
    def ec_ca(self):
        return self._inter(key=self.pki.ec_key())

    @functools.cached_property
    def leaf_ca(self):  # basicConstraints CA:FALSE
        return self._inter(ca=False)

    @functools.cached_property
    def expired_ca(self):
        return self._inter(not_before=self.now - dt.timedelta(days=400), days=365)

    @functools.cached_property
    def future_ca(self):
        return self._inter(not_before=self.now + dt.timedelta(days=2))

    @functools.cached_property
    def short_ca(self):  # valid now, expires in 10 days
        return self._inter(days=11)

    def write(self, directory: Path, *, ca=None, root=None, chain=None, key_pem: bytes | None = None, names: dict | None = None) -> dict[str, Path]:
        """The four files (canonical names unless ``names`` says otherwise)."""
        ca = ca or self.ca
        root = root or self.root
        chain = chain if chain is not None else [ca, root]
        directory.mkdir(parents=True, exist_ok=True)
        paths = {role: directory / (names or {}).get(role, CANONICAL[role]) for role in ROLES}
        paths["ca_cert"].write_bytes(ca.cert_pem)
        self.pki.write_private(paths["ca_key"], key_pem if key_pem is not None else ca.key_pem)
        paths["root_cert"].write_bytes(root.cert_pem)
        paths["cert_chain"].write_bytes(b"".join(c.cert_pem for c in chain))
        return paths


def _der(issued) -> bytes:
    return issued.cert.public_bytes(serialization.Encoding.DER)


def _certs(fn: Callable[[CertKit, Path], dict[str, Path]]) -> Callable[[CertKit, Path], dict[str, Path]]:
    return fn


def _missing_root(kit: CertKit, d: Path) -> dict[str, Path]:
    paths = kit.write(d)
    paths["root_cert"].unlink()
    return paths


def _key_is_a_directory(kit: CertKit, d: Path) -> dict[str, Path]:
    paths = kit.write(d)
    paths["ca_key"].unlink()
    paths["ca_key"].mkdir()  # exists, cannot be read (works as root too, unlike chmod 000)
    return paths


def _ca_cert_der(kit: CertKit, d: Path) -> dict[str, Path]:
    paths = kit.write(d)
    paths["ca_cert"].write_bytes(_der(kit.ca))
    return paths


def _chain_empty(kit: CertKit, d: Path) -> dict[str, Path]:
    paths = kit.write(d)
    paths["cert_chain"].write_bytes(b"")
    return paths


def _root_damaged_pem(kit: CertKit, d: Path) -> dict[str, Path]:
    paths = kit.write(d)
    lines = kit.root.cert_pem.decode().splitlines()
    lines[3] = "!!" + lines[3][2:]  # one body line is no longer base64
    paths["root_cert"].write_text("\n".join(lines) + "\n")
    return paths


def _encrypted_key(kit: CertKit, d: Path) -> dict[str, Path]:
    key = kit.ca.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"passphrase"))
    return kit.write(d, key_pem=key)


CA_FILES: tuple[Case, ...] = (
    Case("ca-files", "root-cert.pem missing", "file missing", "MCA0201", "{root_cert}", _missing_root),
    Case("ca-files", "ca-key.pem unreadable (a directory)", "file unreadable", "MCA0202", "{ca_key}", _key_is_a_directory),
    Case("ca-files", "ca-cert.pem in DER", "certificate file not PEM", "MCA0203", "{ca_cert}", _ca_cert_der),
    Case("ca-files", "cert-chain.pem empty", "certificate file not PEM", "MCA0203", "{cert_chain}", _chain_empty),
    Case("ca-files", "root-cert.pem with a damaged PEM body", "certificate file not PEM", "MCA0203", "{root_cert}", _root_damaged_pem),
    Case("ca-files", "ca-cert.pem under another name", "file name not canonical", "MCA0204", "{ca_cert}", lambda kit, d: kit.write(d, names={"ca_cert": "intermediate.pem"})),
    Case("ca-files", "EC intermediate and key", "CA key not RSA", "MCA0205", "{ca_key}", lambda kit, d: kit.write(d, ca=kit.ec_ca)),
    Case("ca-files", "key of another CA", "key does not match ca-cert.pem", "MCA0206", "{ca_key}", lambda kit, d: kit.write(d, key_pem=kit.other[1].key_pem)),
    Case("ca-files", "ca-cert.pem with CA:FALSE", "ca-cert.pem not a CA", "MCA0207", "{ca_cert}", lambda kit, d: kit.write(d, ca=kit.leaf_ca)),
    Case("ca-files", "root-cert.pem of another CA", "chain does not reach the root", "MCA0208", "{cert_chain}", lambda kit, d: kit.write(d, root=kit.other[0], chain=[kit.ca, kit.root])),
    Case("ca-files", "intermediate expired", "certificate expired", "MCA0209", "{ca_cert}", lambda kit, d: kit.write(d, ca=kit.expired_ca)),
    Case("ca-files", "intermediate not yet valid", "certificate not yet valid", "MCA0210", "{ca_cert}", lambda kit, d: kit.write(d, ca=kit.future_ca)),
    Case(
        "ca-files", "intermediate expires within the margin", "certificate expires within margin", "MCA0211", "{ca_cert}",
        lambda kit, d: kit.write(d, ca=kit.short_ca), via_stack=False, argv=("--margin-days", "30"),
    ),
    Case("ca-files", "root-cert.pem holds the intermediate", "root not self-signed", "MCA0212", "{root_cert}", lambda kit, d: kit.write(d, root=kit.ca, chain=[kit.ca])),
    Case("ca-files", "ca-key.pem holds a certificate", "key file holds no key", "MCA0213", "{ca_key}", lambda kit, d: kit.write(d, key_pem=kit.ca.cert_pem)),
    Case("ca-files", "ca-key.pem encrypted", "key file holds no key", "MCA0213", "{ca_key}", _encrypted_key),
    Case("ca-files", "cert-chain.pem without ca-cert.pem", "chain lacks ca-cert.pem", "MCA0214", "{cert_chain}", lambda kit, d: kit.write(d, chain=[kit.root])),
)


# ============================================================================ reference files of meshca check


def _ref(flag: str, bad: Callable[[CertKit, Path], Path], check: str = "root-cert") -> Callable[[CertKit, Path], tuple[list[str], Path]]:
    """argv of ``meshca check`` with one bad reference file (the others good); returns (argv, bad path)."""

    def build(kit: CertKit, d: Path) -> tuple[list[str], Path]:
        d.mkdir(parents=True, exist_ok=True)
        good = d / "good-root.pem"
        good.write_bytes(kit.root.cert_pem)
        path = bad(kit, d)
        if check == "root-of-trust":
            return ["check", "root-of-trust", "--source", "istioctl", "--context", "gke_dev", "--root-cert", str(path)], path
        files = {"--citadel-root": good, "--meshca-root": good, flag: path}
        return ["check", check, "--source", "istioctl", "--context", "gke_dev", *(x for k, v in files.items() for x in (k, str(v))), "--json"], path

    return build


def _json_garbage(kit: CertKit, d: Path) -> Path:
    path = d / "citadel-root.pem"
    path.write_text(json.dumps({"data": {"root-cert.pem": base64.b64encode(kit.root.cert_pem).decode()}}))  # a Secret, not its PEM
    return path


def _der_root(kit: CertKit, d: Path) -> Path:
    path = d / "meshca-root.der"
    path.write_bytes(_der(kit.root))
    return path


def _absent(kit: CertKit, d: Path) -> Path:
    return d / "no-such-root.pem"


def _directory(kit: CertKit, d: Path) -> Path:
    path = d / "meshca-root.pem"
    path.mkdir()
    return path


def _public_key_instead(kit: CertKit, d: Path) -> Path:
    path = d / "root-cert.pem"
    path.write_bytes(b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n")
    return path


REFERENCE_FILES: tuple[Case, ...] = (
    Case("reference-file", "--citadel-root holds a Secret's JSON", "reference file not PEM", "MCA0412", "{path}", _ref("--citadel-root", _json_garbage)),
    Case("reference-file", "--meshca-root in DER", "reference file not PEM", "MCA0412", "{path}", _ref("--meshca-root", _der_root)),
    Case("reference-file", "root-of-trust --root-cert holds a public key", "reference file not PEM", "MCA0412", "{path}", _ref("--root-cert", _public_key_instead, "root-of-trust")),
    Case("reference-file", "--citadel-root missing", "reference file missing", "MCA0410", "{path}", _ref("--citadel-root", _absent, "workload-cert")),
    Case("reference-file", "--meshca-root unreadable (a directory)", "reference file unreadable", "MCA0411", "{path}", _ref("--meshca-root", _directory)),
)


# ============================================================================ proxy dumps (one pod)


def _camel(entries: dict) -> bytes:
    return json.dumps({"dynamicActiveSecrets": entries}).encode()


def _item(name: str, kind: str, inline: Any) -> dict:
    if kind == "ca":
        secret = {"validationContext": {"trustedCa": inline}}
    else:
        secret = {"tlsCertificate": {"certificateChain": inline, "privateKey": {"inlineBytes": "W3JlZGFjdGVkXQ=="}}}
    return {"name": name, "secret": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret", "name": name, **secret}}


def _good(p) -> tuple[dict, dict]:
    chain = p.citadel_chain("shop", "bad")
    roots = p.pem(p.citadel_root, p.meshca_root)
    return _item("default", "cert", {"inlineBytes": base64.b64encode(chain).decode()}), _item("ROOTCA", "ca", {"inlineBytes": base64.b64encode(roots).decode()})


def _truncated(p) -> bytes:
    whole = _camel(list(_good(p)))
    return whole[: len(whole) // 2]


def _html(p) -> bytes:
    return b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"


def _clusters_dump(p) -> bytes:
    return json.dumps({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "static_clusters": []}]}).encode()


def _no_rootca(p) -> bytes:
    return _camel([_good(p)[0]])


def _empty_bundle(p) -> bytes:
    return _camel([_good(p)[0], _item("ROOTCA", "ca", {"inlineBytes": ""})])


def _bad_base64(p) -> bytes:
    return _camel([_good(p)[0], _item("ROOTCA", "ca", {"inlineBytes": "LS0tLS1CRUdJTi!!!not*base64"})])


def _no_pem(p) -> bytes:
    return _camel([_good(p)[0], _item("ROOTCA", "ca", {"inlineBytes": base64.b64encode(b"trust me, I am a root\n").decode()})])


def _bad_certificate(p) -> bytes:
    broken = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUZmFrZQ==\n-----END CERTIFICATE-----\n"
    return _camel([_good(p)[0], _item("ROOTCA", "ca", {"inlineBytes": base64.b64encode(broken).decode()})])


def _no_default(p) -> bytes:
    return _camel([_good(p)[1]])


PROXY_DUMPS: tuple[Case, ...] = (
    Case("proxy-dump", "dump cut short", "dump not JSON", "MCA0401", "shop/bad-0", _truncated),
    Case("proxy-dump", "an HTML error page", "dump not JSON", "MCA0401", "shop/bad-0", _html),
    Case("proxy-dump", "a clusters dump instead", "dump not a secrets dump", "MCA0402", "shop/bad-0", _clusters_dump),
    Case("proxy-dump", "no ROOTCA", "dump without ROOTCA", "MCA0403", "shop/bad-0", _no_rootca),
    Case("proxy-dump", "empty ROOTCA bundle", "dump with an empty bundle", "MCA0404", "shop/bad-0", _empty_bundle),
    Case("proxy-dump", "ROOTCA bytes not base64", "dump bytes not base64", "MCA0405", "shop/bad-0", _bad_base64),
    Case("proxy-dump", "ROOTCA without PEM", "dump without PEM", "MCA0406", "shop/bad-0", _no_pem),
    Case("proxy-dump", "ROOTCA PEM not a certificate", "dump PEM not X.509", "MCA0407", "shop/bad-0", _bad_certificate),
    Case("proxy-dump", "no default secret", "dump without workload certificate", "MCA0408", "shop/bad-0", _no_default, check="workload-cert"),
)


CATALOGUE: tuple[Case, ...] = STACK_CONFIG + CA_FILES + REFERENCE_FILES + PROXY_DUMPS


def by_area(area: str) -> tuple[Case, ...]:
    return tuple(c for c in CATALOGUE if c.area == area)
