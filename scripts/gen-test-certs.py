#!/usr/bin/env python3
"""Generate a THROWAWAY test CA (root + RSA intermediate) into a directory (default samples/certs).

TEST ONLY, like istio/samples/certs: the private key is committed for the shipped stacks, the
rehearsal and the tests. Never use these files on a real mesh: a real migration must use the
CA the mesh trusts today (docs/ca-files.md).

    python scripts/gen-test-certs.py [DIR] [--org NAME] [--days N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meshca import pki  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", default="samples/certs", type=Path)
    parser.add_argument("--org", default="meshca-samples-TEST-ONLY")
    parser.add_argument("--days", type=int, default=7300, help="validity in days (default 20 years)")
    args = parser.parse_args()
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=1)
    root, ca = pki.citadel_ca(args.org, days=args.days, not_before=start)
    paths = pki.write_ca_files(args.directory, root, ca)
    for role, path in paths.items():
        print(f"{role:10s} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
