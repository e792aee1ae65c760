"""The model's switches: every rule of trust-model.md marked *inferred* is a named switch.

A rehearsal's verdict rests on these settings, so each result carries them
(``assumptions`` in the JSON, a table in the HTML report). Known rules are not switches:
they are simply how the model works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import MeshcaError


@dataclass(frozen=True)
class Switch:
    name: str
    default: Any
    choices: tuple[Any, ...]
    rule: str  # the inferred rule, as trust-model.md states it
    other: str  # what the other setting predicts


SWITCHES: tuple[Switch, ...] = (
    Switch(
        "rev2-runs-citadel-ca",
        # off by default: the pinned asmcli 1.19.10-asm.9+config1's ca-migration-meshca.yaml sets
        # ENABLE_CA_SERVER: false (anthos-service-mesh-packages asm/istio/options/
        # ca-migration-meshca.yaml line 22); "on" rehearses a later asmcli without it.
        False,
        (True, False),
        "REV2 istiod (mesh_ca + ca-migration-meshca) still runs its own CA from cacerts/istio-ca-secret "
        "and merges that root into the bundle it pushes",
        "off (ENABLE_CA_SERVER=false, the 1.19.10-asm.9 overlay): REV2's istiod merges no Citadel root of its "
        "own, so REV2 proxies trust today's root only where meshConfig.caCertificates lists it "
        "(meshca:rev2CitadelRoot, on by default); without that list they reject REV1 workloads' Citadel "
        "certificates during phase B",
    ),
    Switch(
        "overlay-aliases",
        "replace",
        ("replace", "merge"),
        "the ca-migration-meshca overlay's trustDomainAliases list replaces the base aliases "
        "(FLEET.svc.id.goog, FLEET.hub.id.goog); merge keeps them and adds cluster.local",
        "merge: REV2 also accepts FLEET.hub.id.goog identities",
    ),
    Switch(
        "citadel-keeps-base-aliases",
        True,
        (True, False),
        "a --ca citadel revision keeps the base operator file's trustDomainAliases "
        "(FLEET.svc.id.goog, FLEET.hub.id.goog) beside trustDomain cluster.local",
        "off: REV1 servers reject REV2 clients' FLEET.svc.id.goog identities wherever "
        "authorization policies name principals",
    ),
    Switch(
        "phase-c-new-root",
        True,
        (True, False),
        "istiod restarted without cacerts and istio-ca-secret generates a new self-signed root, "
        "stores it in istio-ca-secret and puts it in the bundles",
        "no: istiod runs without a CA root; bundles hold the Mesh CA root only",
    ),
    Switch(
        "authz-names-principals",
        True,
        (True, False),
        "authorization policies name principals, so a server accepts a client only when the "
        "client's SPIFFE trust domain is its revision's trust domain or an alias",
        "off: only the certificate chains decide",
    ),
    Switch(
        "orphans-keep-state",
        True,
        (True, False),
        "a proxy whose revision's istiod was removed keeps its last bundle and certificate "
        "until the certificate expires, then fails to rotate",
        "off: an orphaned proxy loses its certificate at once (every call to or from it fails)",
    ),
    Switch(
        "cert-ttl-hours",
        24,
        (),
        "workload certificates live this many simulated hours and rotate at half-life "
        "from the proxy's current signer",
        "any positive number of hours",
    ),
)
BY_NAME = {s.name: s for s in SWITCHES}


def defaults() -> dict[str, Any]:
    return {s.name: s.default for s in SWITCHES}


def parse_value(name: str, text: str) -> Any:
    """A switch value from the command line (on/off, yes/no, true/false, a choice, a number)."""
    switch = BY_NAME.get(name)
    if switch is None:
        raise MeshcaError("RehearseSwitchUnknown", f"--assume {name}", name=name, known=", ".join(BY_NAME))
    low = text.strip().lower()
    if isinstance(switch.default, bool):
        if low in ("on", "yes", "true", "1"):
            return True
        if low in ("off", "no", "false", "0"):
            return False
    elif isinstance(switch.default, int):
        if low.isdigit() and int(low) > 0:
            return int(low)
    elif low in switch.choices:
        return low
    allowed = "on/off" if isinstance(switch.default, bool) else ("a positive number" if isinstance(switch.default, int) else "/".join(switch.choices))
    raise MeshcaError("RehearseSwitchValue", f"--assume {name}={text}", name=name, value=text, allowed=allowed)


def resolve(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults with ``overrides`` applied; unknown names are an error."""
    out = defaults()
    for name, value in (overrides or {}).items():
        if name not in BY_NAME:
            raise MeshcaError("RehearseSwitchUnknown", f"--assume {name}", name=name, known=", ".join(BY_NAME))
        out[name] = parse_value(name, value) if isinstance(value, str) and not isinstance(BY_NAME[name].default, str) else value
    return out


def shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)
