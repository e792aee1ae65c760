"""Promotion order (which stack may take which position) and upstream_refusals, the same order
as the downstream program checks it against its upstream stack's outputs."""

from __future__ import annotations

import pytest

from harness import ROOT
from meshca import plan as planmod
from meshca.config import load_stack
from meshca.promote import order_refusals, promoted_map, promotion_refusals, upstream_refusals

DEV = load_stack(ROOT, "dev")
STAGING = load_stack(ROOT, "staging")
PROD = load_stack(ROOT, "prod")
CSM116 = load_stack(ROOT, "csm116")


def at(config, index: int, rollback: bool = False):
    position = planmod.route(config)[index]
    return config.at(position.phase, rollback, position.namespace_map)


def codes(errors) -> list[str]:
    return [e.code for e in errors]


def test_shipped_order_is_fine():
    assert order_refusals(DEV, STAGING) == []
    assert promoted_map(DEV, STAGING) == DEV.namespace_map  # same revision names, same roles


def test_roles_map_to_the_targets_revision_names():
    other = STAGING.at("baseline", False, STAGING.namespace_map)
    import dataclasses

    other = dataclasses.replace(other, rev1="asm-b-rev1", rev2="asm-b-rev2", namespaces=tuple(dataclasses.replace(n, revision="default") for n in other.namespaces))
    moved = promoted_map(at(DEV, 8), other)  # dev in phase B, batch 1
    assert {moved[ns] for ns in ("frontend", "cart", "checkout")} == {"asm-b-rev2"}
    assert {moved[ns] for ns in ("ads", "search")} == {"asm-b-rev1"}


@pytest.mark.parametrize(
    "source, target, code",
    [
        (DEV, CSM116, "MCA0709"),  # other namespaces
        (at(DEV, 2, rollback=True), STAGING, "MCA0710"),
        (DEV, at(STAGING, 1, rollback=True), "MCA0711"),
        (DEV, at(STAGING, 7), "MCA0712"),  # staging already in phase B
        (at(DEV, 2), at(STAGING, 3), "MCA0712"),  # same phase, staging moved more namespaces
        (at(DEV, 7), STAGING, "MCA0713"),  # baseline -> mesh-ca skips phase A
        (at(DEV, 6), at(STAGING, 2), "MCA0713"),  # finishing A while staging has batches to go
        (DEV, PROD, "MCA0714"),  # prod's upstream is staging
    ],
    ids=["namespaces", "source-rollback", "target-rollback", "target-ahead-phase", "target-ahead-ns", "skip-phase", "skip-moves", "not-upstream"],
)
def test_order_refusals(source, target, code):
    assert code in codes(order_refusals(source, target))


def test_finishing_a_phase_after_every_move_is_fine():
    assert order_refusals(at(DEV, 6), at(STAGING, 5)) == []
    assert order_refusals(at(DEV, 7), at(STAGING, 6)) == []


def test_promotion_refusals_include_evidence():
    assert codes(promotion_refusals(DEV, STAGING, None)) == ["MCA0700"]
    assert codes(promotion_refusals(DEV, DEV, None)) == ["MCA0715"]


# ----------------------------------------------------------------------------- upstream order


def outputs_of(config) -> dict:
    names = {config.old_revision: "old", config.rev1: "rev1", config.rev2: "rev2"}
    return {
        "stack": config.stack,
        "phase": config.phase,
        "rollback": config.rollback,
        "namespaceRoles": {ns: names[rev] for ns, rev in config.namespace_map.items()},
    }


def test_behind_or_level_with_upstream_is_fine():
    assert upstream_refusals(STAGING, outputs_of(DEV)) == []
    assert upstream_refusals(at(STAGING, 2), outputs_of(DEV)) == []  # same batch as dev
    assert upstream_refusals(at(STAGING, 7), outputs_of(at(DEV, 9))) == []


def test_running_ahead_of_upstream_is_refused():
    assert codes(upstream_refusals(at(STAGING, 6), outputs_of(DEV))) == ["MCA0721"]
    errors = upstream_refusals(at(STAGING, 3), outputs_of(DEV))  # staging moved batch 2, dev did not
    assert codes(errors) == ["MCA0722"]
    assert "payments" in errors[0].line() and "rev1 vs old" in errors[0].line()


def test_upstream_rolling_back_holds_the_same_phase():
    assert codes(upstream_refusals(at(STAGING, 8), outputs_of(at(DEV, 9, rollback=True)))) == ["MCA0723"]
    assert upstream_refusals(at(STAGING, 6), outputs_of(at(DEV, 9, rollback=True))) == []  # behind it
    # Rolling back here is never running ahead.
    assert upstream_refusals(at(STAGING, 8, rollback=True), outputs_of(DEV)) == []


@pytest.mark.parametrize("outs", [None, {}, {"phase": "somewhere"}, {"phase": "baseline"}], ids=["none", "empty", "bad-phase", "no-roles"])
def test_upstream_without_outputs_is_refused(outs):
    assert codes(upstream_refusals(STAGING, outs)) == ["MCA0720"]
