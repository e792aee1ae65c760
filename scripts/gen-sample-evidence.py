#!/usr/bin/env python3
"""samples/evidence/dev-outputs.json: what `pulumi stack output --json -s dev` prints after
`pulumi up` of the shipped dev stack at its position, so `meshca promote` can be tried offline:

    .venv/bin/meshca promote --from dev --to staging --evidence samples/evidence/dev-outputs.json --dry-run

The outputs are those of the real program (components/program.py) run under the test mocks
(tests/harness.py), with every gate passed; SAMPLE DATA, like samples/certs: it proves nothing
about a real mesh. Regenerate it whenever Pulumi.dev.yaml moves:

    .venv/bin/python scripts/gen-sample-evidence.py --write    # rewrite the file
    .venv/bin/python scripts/gen-sample-evidence.py --check    # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "evidence" / "dev-outputs.json"
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def render() -> str:
    from harness import run_program

    result = run_program("dev")
    if result.error is not None:
        raise SystemExit(f"the dev stack does not run under mocks: {result.error}")
    # `pulumi stack output --json` prints the outputs as one JSON object, keys sorted, indent 2
    return json.dumps(json.loads(json.dumps(result.outputs)), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        SAMPLE.parent.mkdir(parents=True, exist_ok=True)
        SAMPLE.write_text(text, encoding="utf-8")
        return 0
    if args.check:
        return 0 if SAMPLE.is_file() and SAMPLE.read_text(encoding="utf-8") == text else 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
