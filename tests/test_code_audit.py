"""The code audit's own machinery (tests/code_audit_plugin.py): the judgement, the recorder in
subprocesses, and the static precondition that every live code is named by some test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from code_audit_plugin import RECORDER_DIR, judge, live_codes, named_codes

HERE = Path(__file__).resolve().parent


def test_a_code_counts_only_when_a_test_that_names_it_constructed_it():
    live = {"MCA0100", "MCA0101", "MCA0102"}
    constructed = {"t1": {"MCA0100", "MCA0101"}, "t2": {"MCA0102"}}
    named = {"t1": {"MCA0100"}, "t2": {"MCA0101"}}
    verdict = judge(live, constructed, named)
    assert verdict.exercised == {"MCA0100"}
    assert verdict.missing == ["MCA0101", "MCA0102"]
    assert verdict.constructed_only == {"MCA0101", "MCA0102"}  # made, but not by a test about them
    assert judge(live, {"t1": live}, {"t1": live}).missing == []
    assert judge(live, {}, {"t1": live}).missing == sorted(live)


def test_names_count_as_whole_words_only():
    names = {"UsageError": "MCA0901", "CertExpired": "MCA0209"}
    assert named_codes('raise MeshcaError("UsageError", ...) # MCA0412', names) == {"MCA0901", "MCA0412"}
    assert named_codes("CertExpiredSoon and XMCA0999", names) == set()


def test_a_meshca_subprocess_records_the_codes_it_constructs(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(RECORDER_DIR), os.environ.get("PYTHONPATH", "")]),
        "MESHCA_CODE_RECORD_DIR": str(tmp_path),
        "MESHCA_CODE_RECORD_TEST": "tests/x.py::t",
    }
    proc = subprocess.run([sys.executable, "-m", "meshca", "certs", "verify"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and proc.stderr.startswith("Error MCA0901 ")
    [record] = list(tmp_path.glob("codes-*.jsonl"))
    assert [json.loads(line) for line in record.read_text().splitlines()] == [{"test": "tests/x.py::t", "code": "MCA0901"}]
    # Without the directory nothing is recorded and nothing changes.
    env.pop("MESHCA_CODE_RECORD_DIR")
    again = subprocess.run([sys.executable, "-m", "meshca", "certs", "verify"], capture_output=True, text=True, env=env)
    assert again.stderr == proc.stderr and len(list(tmp_path.glob("codes-*.jsonl"))) == 1


def test_every_live_code_is_named_by_some_test():
    """The static half of the audit, which also holds for partial runs."""
    own = {"test_code_audit.py", "code_audit_plugin.py"}  # this file's examples do not count
    text = "\n".join(p.read_text(encoding="utf-8") for p in HERE.rglob("*.py") if p.name not in own)
    names = live_codes()
    missing = sorted(set(names.values()) - named_codes(text, names))
    assert not missing, f"codes no test names: {missing}"
