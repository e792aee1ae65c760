"""Trust domains of revisions: ``trustDomain`` + ``trustDomainAliases`` from ConfigMap istio-REV.

During the move a Citadel-signed workload (``spiffe://cluster.local/...``) and a Mesh CA-signed
one (``spiffe://FLEET.svc.id.goog/...``) must both be accepted by every revision, or
authorization policies naming principals reject one side.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from ..errors import MeshcaError
from .source import ProxySource

CLUSTER_LOCAL = "cluster.local"
ISTIO_DEFAULT_TRUST_DOMAIN = "cluster.local"  # meshConfig.trustDomain when unset


def configmap_name(revision: str) -> str:
    """The revision's mesh ConfigMap: ``istio`` for the unlabelled default, else ``istio-REV``."""
    return "istio" if revision in ("", "default") else f"istio-{revision}"


def fleet_domain(fleet_project: str) -> str:
    return f"{fleet_project}.svc.id.goog"


@dataclass(frozen=True)
class RevisionDomains:
    revision: str
    configmap: str
    trust_domain: str | None = None
    aliases: tuple[str, ...] = ()
    error: MeshcaError | None = None  # ConfigMap missing or mesh key unusable

    @property
    def accepted(self) -> tuple[str, ...]:
        if self.error is not None or self.trust_domain is None:
            return ()
        return (self.trust_domain, *[a for a in self.aliases if a != self.trust_domain])


def read_revision(source: ProxySource, revision: str) -> RevisionDomains:
    name = configmap_name(revision)
    subject = f"ConfigMap istio-system/{name}"
    cm = source.read_configmap(name, "istio-system")
    if cm is None:
        return RevisionDomains(revision, name, error=MeshcaError("RevisionConfigMissing", subject, problem=f"revision {revision}: ConfigMap not found"))
    mesh_text = (cm.get("data") or {}).get("mesh")
    if mesh_text is None:
        return RevisionDomains(revision, name, error=MeshcaError("RevisionConfigMissing", subject, problem=f"revision {revision}: no 'mesh' key"))
    try:
        mesh = yaml.safe_load(mesh_text) if mesh_text.strip() else {}
    except yaml.YAMLError as exc:
        return RevisionDomains(revision, name, error=MeshcaError("RevisionMeshConfigInvalid", subject, reason=str(exc).split("\n")[0]))
    if mesh is None:
        mesh = {}
    if not isinstance(mesh, dict):
        return RevisionDomains(revision, name, error=MeshcaError("RevisionMeshConfigInvalid", subject, reason=f"a YAML {type(mesh).__name__}"))
    td = mesh.get("trustDomain") or ISTIO_DEFAULT_TRUST_DOMAIN
    aliases = mesh.get("trustDomainAliases") or []
    if not isinstance(aliases, list):
        return RevisionDomains(revision, name, error=MeshcaError("RevisionMeshConfigInvalid", subject, reason="trustDomainAliases is not a list"))
    return RevisionDomains(revision, name, str(td), tuple(str(a) for a in aliases))


def judge_revision(rd: RevisionDomains, fleet_project: str) -> MeshcaError | None:
    """None when the revision accepts both cluster.local and FLEET.svc.id.goog."""
    if rd.error is not None:
        return rd.error
    fleet = fleet_domain(fleet_project)
    missing = [d for d in (CLUSTER_LOCAL, fleet) if d not in rd.accepted]
    if not missing:
        return None
    if fleet in missing and list(rd.aliases) == [CLUSTER_LOCAL]:
        # ca-migration-meshca sets trustDomainAliases: [cluster.local] as a plain -f overlay
        risk = (
            f" (aliases are exactly [cluster.local]: the ca-migration-meshca overlay probably REPLACED the base"
            f" aliases {fleet}, {fleet_project}.hub.id.goog instead of merging them)"
        )
    else:
        risk = " (an istioctl -f overlay that lists trustDomainAliases replaces the whole list; it does not merge with the base aliases)"
    return MeshcaError(
        "RevisionTrustDomainIncomplete",
        f"ConfigMap istio-system/{rd.configmap}",
        trust_domain=rd.trust_domain,
        aliases=", ".join(rd.aliases),
        missing=" and ".join(missing),
        risk=risk,
    )
