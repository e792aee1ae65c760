import sys
from pathlib import Path

# tests/ helpers (harness, fakes) import as top-level modules; the project root for components/.
HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# The code audit: every live MCA code must be exercised by the full test run (see the plugin).
pytest_plugins = ["code_audit_plugin"]


import pytest

FAKE_KUBECONFIG = HERE / "fakes" / "kubeconfig.yaml"


@pytest.fixture(autouse=True)
def _fake_kubeconfig(request, monkeypatch):
    """Commands that need a cluster refuse a kubeconfig or context that does not exist
    (MCA1001/MCA1002); the fake tools' contexts live in fakes/kubeconfig.yaml. Not for the
    end-to-end tests: their real clusters' KUBECONFIG is set for the session."""
    if (HERE / "e2e") in Path(str(request.node.fspath)).resolve().parents:
        return
    monkeypatch.setenv("KUBECONFIG", str(FAKE_KUBECONFIG))
