#!/usr/bin/env python3
"""The README's hardening table, generated from the test data (never typed by hand).

Sources: the bad-input catalogue (tests/bad_inputs.py), the fault scenarios
(meshca/sim/scenarios.py FAULT_SCENARIOS) and the secret scan's forms and surfaces
(tests/secret_scan.py). The table lives in README.md between ``<!-- hardening:begin -->`` and
``<!-- hardening:end -->``; tests/test_readme_hardening.py fails when it is stale.

    python scripts/readme_hardening.py            # print the table
    python scripts/readme_hardening.py --write    # rewrite it in README.md
    python scripts/readme_hardening.py --check    # exit 1 when README.md is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN = "<!-- hardening:begin -->"
END = "<!-- hardening:end -->"
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

AREA_TITLES = {
    "stack-config": "malformed stack configs",
    "ca-files": "malformed CA files",
    "reference-file": "bad reference roots of `meshca check`",
    "proxy-dump": "malformed proxy secret dumps (one pod)",
}
AREA_LOST = {
    "stack-config": "nothing: one coded line naming the key or file, exit 2; no process started, nothing registered by the program",
    "ca-files": "nothing: one coded line naming the file, exit 2 (`meshca certs verify`, `meshca plan`, the program)",
    "reference-file": "nothing: one coded line naming the file, exit 2; neither kubectl nor istioctl started",
    "proxy-dump": "nothing: that pod is `error` with its own code in the JSON `reason`, every other pod judged, exit 1",
}


def _cell(text: str) -> str:
    """Markdown table cell: backslashes shown as typed, pipes escaped, one line."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table() -> str:
    from bad_inputs import AREAS, by_area
    from meshca.sim.scenarios import FAULT_SCENARIOS
    from secret_scan import FORMS, SURFACES

    rows = ["| tried | how many | what | lost |", "|---|---|---|---|"]
    for area in AREAS:
        cases = by_area(area)
        kinds = list(dict.fromkeys(c.kind for c in cases))
        codes = sorted({c.code for c in cases})
        what = "; ".join(f"{k} ({', '.join(sorted({c.code for c in cases if c.kind == k}))})" for k in kinds)
        rows.append(f"| {AREA_TITLES[area]} | {len(cases)} inputs, {len(codes)} codes | {_cell(what)} | {AREA_LOST[area]} |")
    faults = "; ".join(f"`{s.name}`: {s.title}" for s in FAULT_SCENARIOS)
    rows.append(
        f"| faults rehearsed (`meshca rehearse --scenario NAME`) | {len(FAULT_SCENARIOS)} faults | {_cell(faults)} | nothing: 0 failed mTLS handshakes, "
        "the fault reported with its code, the rerun after the remedy converges (another `pulumi up` applies nothing) |"
    )
    forms = "; ".join(f.name for f in FORMS)
    rows.append(f"| forms of a canary CA key scanned for | {len(FORMS)} forms | {_cell(forms)} | nothing: the key is only in the 0600 phase C backups |")
    rows.append(f"| outputs scanned for it | {len(SURFACES)} surfaces | {_cell('; '.join(SURFACES))} | nothing |")
    total = sum(len(by_area(a)) for a in AREAS)
    return "\n".join(rows) + f"\n\n{total} malformed inputs, {len(FAULT_SCENARIOS)} faults, {len(FORMS)} secret forms on {len(SURFACES)} surfaces; all run in `make test`."


def splice(text: str, generated: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{generated}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="rewrite the table in README.md")
    group.add_argument("--check", action="store_true", help="exit 1 when README.md's table is stale")
    args = parser.parse_args(argv)
    generated = table()
    if not args.write and not args.check:
        print(generated)
        return 0
    text = README.read_text(encoding="utf-8")
    new = splice(text, generated)
    if args.check:
        if new != text:
            print("README.md's hardening table is stale: run python scripts/readme_hardening.py --write", file=sys.stderr)
            return 1
        return 0
    if new != text:
        README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
