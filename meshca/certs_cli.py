"""``meshca certs verify``: pre-flight the four Citadel CA files before asmcli sees them.

    meshca certs verify --ca-cert ca-cert.pem --ca-key ca-key.pem \\
        --root-cert root-cert.pem --cert-chain cert-chain.pem [--margin-days 30] [--json]

What asmcli checks (an RSA key, key and ca-cert.pem with one modulus, ca-cert.pem verifying
through cert-chain.pem to root-cert.pem) and more: the canonical file names asmcli turns into
the ``cacerts`` keys istiod reads, ca-cert.pem a CA, cert-chain.pem holding ca-cert.pem, the
root self-signed, and every certificate valid now and for ``--margin-days`` more days
(default 30: a migration of a few weeks must not outlive its CA). Exit 0 with a summary
(fingerprints, subjects, expiries; the key only as its kind, never its contents), or 2 with
one coded line per problem on stderr. ``--json`` prints only JSON on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from .errors import MeshcaErrors

DEFAULT_MARGIN_DAYS = 30
MAX_MARGIN_DAYS = 3650
FLAGS = (("ca_cert", "--ca-cert", "caCert"), ("ca_key", "--ca-key", "caKey"), ("root_cert", "--root-cert", "rootCert"), ("cert_chain", "--cert-chain", "certChain"))


def _margin(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of days") from None
    if not 0 <= value <= MAX_MARGIN_DAYS:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..{MAX_MARGIN_DAYS} days")
    return value


def register(subparsers) -> None:
    certs = subparsers.add_parser("certs", help="pre-flight the four Citadel CA files (ca-cert, ca-key, root-cert, cert-chain)")
    sub = certs.add_subparsers(dest="certs_command", required=True)
    p = sub.add_parser(
        "verify",
        help="check the four CA files the way asmcli will, and more; exit 0 when all hold, 2 otherwise",
        description=(
            "Check the four CA files the way asmcli will (RSA key, key matches ca-cert.pem, chain verifies to the root) "
            "and more (canonical names, ca-cert.pem is a CA, cert-chain.pem holds ca-cert.pem, self-signed root, "
            f"every certificate valid now and for --margin-days more days, default {DEFAULT_MARGIN_DAYS})."
        ),
    )
    for _, flag, _ in FLAGS:
        p.add_argument(flag, required=True, metavar="FILE", help=f"the {flag[2:]}.pem file")
    p.add_argument(
        "--margin-days",
        type=_margin,
        default=DEFAULT_MARGIN_DAYS,
        metavar="N",
        help=f"every certificate must stay valid N more days (default {DEFAULT_MARGIN_DAYS}; 0 checks only now)",
    )
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.set_defaults(func=cmd_verify)


def _facts_doc(files, facts, margin_days: int, now: dt.datetime) -> dict:
    by_role: dict[str, list] = {}
    for c in facts.certificates:
        by_role.setdefault(c.role, []).append(c)
    ca, root = by_role["ca_cert"][0], by_role["root_cert"][0]
    return {
        "ok": True,
        "checkedAt": now.isoformat(),
        "marginDays": margin_days,
        "rootSha256": facts.root_sha256,
        "files": {
            "caCert": {"path": files.shown("ca_cert"), **ca.as_dict()},
            "caKey": {"path": files.shown("ca_key"), "kind": facts.key_kind, "matchesCaCert": True},
            "rootCert": {"path": files.shown("root_cert"), **root.as_dict(), "roots": len(by_role["root_cert"])},
            "certChain": {"path": files.shown("cert_chain"), "certificates": [c.as_dict() for c in by_role.get("cert_chain", [])]},
        },
        "errors": [],
    }


def _days_left(not_after: str, now: dt.datetime) -> int:
    return (dt.datetime.fromisoformat(not_after) - now).days


def _text(doc: dict, now: dt.datetime) -> str:
    from .certs import colon_fingerprint, short_fingerprint

    f = doc["files"]

    def cert_line(label: str, c: dict) -> str:
        return (
            f"{label:15s} sha256 {colon_fingerprint(c['sha256'])}\n"
            f"{'':15s} {c['subject']}, valid until {c['notAfter']} ({_days_left(c['notAfter'], now)} days)"
        )

    out = [
        f"meshca certs verify: PASS (names, RSA key matching ca-cert.pem, CA, chain to a self-signed root, "
        f"valid now and for {doc['marginDays']} more days)",
        cert_line("ca-cert.pem", f["caCert"]) + f"\n{'':15s} {f['caCert']['path']}",
        f"{'ca-key.pem':15s} {f['caKey']['kind']} private key, matches ca-cert.pem (contents never printed)\n{'':15s} {f['caKey']['path']}",
        cert_line("root-cert.pem", f["rootCert"]) + f"\n{'':15s} {f['rootCert']['path']}",
        f"{'cert-chain.pem':15s} {len(f['certChain']['certificates'])} certificate(s), ca-cert.pem to the root\n{'':15s} {f['certChain']['path']}",
    ]
    for i, c in enumerate(f["certChain"]["certificates"]):
        out.append(f"{'':15s} [{i}] sha256 {short_fingerprint(c['sha256'])} {c['subject']}, valid until {c['notAfter']}")
    out.append(f"root of trust: sha256 {colon_fingerprint(doc['rootSha256'])}")
    return "\n".join(out)


def cmd_verify(args: argparse.Namespace) -> int:
    from .certs import CaFiles, verify_ca_files

    now = dt.datetime.now(dt.timezone.utc)
    given = {role: getattr(args, role) for role, _, _ in FLAGS}
    files = CaFiles(**{role: Path(p) for role, p in given.items()}, display=given)
    facts, errors = verify_ca_files(files, now=now, margin_days=args.margin_days, check_names=True)
    if errors:
        raise MeshcaErrors(errors)  # with --json, main() prints them as {"ok": false, "errors": [...]}
    doc = _facts_doc(files, facts, args.margin_days, now)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(_text(doc, now))
    return 0


if __name__ == "__main__":  # pragma: no cover - `meshca certs verify` is the entry point
    from .cli import main

    sys.exit(main(["certs", *sys.argv[1:]]))
