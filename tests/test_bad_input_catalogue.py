"""The bad-input catalogue itself (tests/bad_inputs.py): enough distinct inputs, one code per
kind of malformation, and every input code of meshca/messages.yaml has a case."""

from __future__ import annotations

import re
from collections import defaultdict

from bad_inputs import AREAS, CATALOGUE, by_area
from meshca.errors import catalogue

# Codes that judge an input file or stack config (the ranges the catalogue must cover).
INPUT_RANGES = re.compile(r"^MCA(01\d\d|02\d\d|040\d|041[0-2])$")


def test_at_least_30_distinct_malformed_inputs():
    names = [c.id for c in CATALOGUE]
    assert len(names) == len(set(names))
    assert len(CATALOGUE) >= 30
    assert {c.area for c in CATALOGUE} == set(AREAS)
    assert all(by_area(a) for a in AREAS)


def test_every_code_is_a_live_error_of_the_catalogue():
    by_code = {m.code: m for m in catalogue().values()}
    for case in CATALOGUE:
        message = by_code.get(case.code)
        assert message is not None, case
        assert not message.retired and message.level == "Error", case


def test_one_code_per_kind_and_one_kind_per_code():
    kinds_of = defaultdict(set)
    codes_of = defaultdict(set)
    for case in CATALOGUE:
        kinds_of[case.code].add((case.area, case.kind))
        codes_of[(case.area, case.kind)].add(case.code)
    shared = {code: kinds for code, kinds in kinds_of.items() if len(kinds) > 1}
    assert not shared, f"codes shared by different kinds of input: {shared}"
    split = {kind: codes for kind, codes in codes_of.items() if len(codes) > 1}
    assert not split, f"kinds reported with several codes: {split}"


def test_every_input_code_of_the_catalogue_has_a_case():
    wanted = {m.code for m in catalogue().values() if INPUT_RANGES.match(m.code) and m.level == "Error" and not m.retired}
    missing = wanted - {c.code for c in CATALOGUE}
    assert not missing, f"input codes without a bad-input case: {sorted(missing)}"


def test_the_proofs_that_nothing_ran_can_fail(tmp_path):
    """The audit hook sees a process being started, and a tripwire logs when it is run."""
    import subprocess

    from hardening import no_process_started, run_meshca, tripwire_calls, write_tripwires

    with no_process_started() as events:
        subprocess.run(["true"], check=True)
    assert events and events[0][0] == "subprocess.Popen"
    tripwire = write_tripwires(tmp_path)
    proc = run_meshca(["restart", "--namespace", "shop", "--revision", "asm-1"], tripwire=tripwire)
    assert proc.returncode == 2  # meshca restart runs kubectl: the tripwire answers and logs it
    assert tripwire_calls(tripwire) and tripwire_calls(tripwire)[0].startswith("kubectl get deployment istiod-asm-1")
