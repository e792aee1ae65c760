"""End-to-end fixtures: real clusters on loopback (testinfra/cluster.py) and the real toolchain.

Everything under tests/e2e is marked ``e2e`` and runs only with ``make e2e`` (``pytest -m e2e
tests/e2e``); ``make test`` deselects it. A missing toolchain is a failure that says to run
``make toolchain``, never a silent skip.

Fixtures:
- ``toolchain``: the bin dir and PULUMI_HOME of ``make toolchain`` (toolchain/build.py).
- ``clusters_factory``: ``clusters_factory(["ctx-a", "ctx-b"])`` starts clusters once per context
  list for the session and tears them down at its end; KUBECONFIG and the injector variables
  are set in os.environ while they run.
- ``dev_clusters``: the dev stack's one cluster (Pulumi.dev.yaml's context name).

MESHCA_E2E_KEEP=1 keeps the temp dirs (logs, etcd data, kubeconfig) after the session.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from testinfra.cluster import DEV_CONTEXT, Clusters, LaunchError, missing_tools, toolchain_bin, toolchain_pulumi_home  # noqa: E402

PULUMI_TOOLS = ("pulumi", "pulumi-language-python", "pulumi-resource-pulumi-python")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@dataclass(frozen=True)
class Toolchain:
    bin: Path
    pulumi_home: Path


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    bindir = toolchain_bin(REPO)
    missing = missing_tools(bindir)
    if missing:
        pytest.fail(f"toolchain bin dir {bindir} lacks {', '.join(missing)}: run `make toolchain` first", pytrace=False)
    return Toolchain(bindir, toolchain_pulumi_home(REPO))


@pytest.fixture(scope="session")
def clusters_factory(toolchain, request):
    started: dict[tuple[str, ...], Clusters] = {}
    saved = {k: os.environ.get(k) for k in ("KUBECONFIG", "MESHCA_STANDIN_INJECTOR_URL", "MESHCA_STANDIN_INJECTOR_CA_BUNDLE")}
    keep = os.environ.get("MESHCA_E2E_KEEP") == "1"

    def make(contexts) -> Clusters:
        key = tuple(contexts)
        if key not in started:
            c = Clusters(list(contexts), bindir=toolchain.bin)
            try:
                c.start()
            except LaunchError as exc:
                print(c.logs(), file=sys.stderr)
                c.stop(keep=keep)
                pytest.fail(f"clusters {list(contexts)} did not start: {exc}", pytrace=False)
            t = c.timings["start"]
            per = ", ".join(f"{cl.context}: " + " ".join(f"{k} {v:.1f}s" for k, v in cl.timings.items()) for cl in c.clusters)
            print(f"\n[e2e] clusters {list(contexts)} up in {t:.1f} s ({per}); workdir {c.workdir}", file=sys.stderr)
            started[key] = c
            os.environ.update(c.exports)
        return started[key]

    yield make
    failed = request.session.testsfailed
    for c in started.values():
        if failed:
            print(f"\n[e2e] {failed} test(s) failed; process logs of {c.contexts}:\n{c.logs(80)}", file=sys.stderr)
        c.stop(keep=keep or bool(failed and os.environ.get("MESHCA_E2E_KEEP_ON_FAILURE") == "1"))
        if keep:
            print(f"[e2e] kept {c.workdir}", file=sys.stderr)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def dev_clusters(clusters_factory) -> Clusters:
    return clusters_factory([DEV_CONTEXT])
