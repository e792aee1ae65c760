"""An in-process source (the rehearsal's simulated cluster) is read and judged on the runner's
own thread, in order (issue 13): the same document as a threaded source, progress in the order
the pods were listed, no thread started, a whole-check error after the pods before it."""

from __future__ import annotations

import pytest

from fakes.trust_cluster import DirSource, make_pki, sidecar_dump, standard_cluster
from meshca.errors import MeshcaError
from meshca.trust import runner
from meshca.trust.runner import CheckRequest, run_check

pytestmark = pytest.mark.filterwarnings("error")


class InProcess(DirSource):
    in_process = True


@pytest.fixture(scope="module")
def p():
    return make_pki()


def _cluster(p, n=80):
    c = standard_cluster(p)
    both = p.pem(p.citadel_root, p.meshca_root)
    for i in range(n):
        roots = both if i % 7 else p.citadel_root.cert_pem
        c.add_pod(f"ns-{i % 5}", f"app-{i:03d}", dump=sidecar_dump(p.citadel_chain(f"ns-{i % 5}", "app"), roots))
    return c


def _run(root, p, source_cls=InProcess, seen=None, **kw):
    seen = [] if seen is None else seen
    src = source_cls(root)
    doc = run_check(src, CheckRequest("root-cert", meshca_roots=(p.meshca_root.cert,), **kw), progress=lambda d, t, e: seen.append((d, t, e["namespace"], e["pod"], e["status"])))
    return doc, seen, src


def test_in_order_on_the_runner_thread_with_the_threaded_verdict(tmp_path, p, monkeypatch):
    root = _cluster(p).write(tmp_path / "cluster")
    threaded, seen_threaded, _ = _run(root, p, DirSource)
    started = []
    real = runner.ThreadPoolExecutor

    def counting(*a, **kw):
        started.append(kw.get("max_workers"))
        return real(*a, **kw)

    monkeypatch.setattr(runner, "ThreadPoolExecutor", counting)
    inline, seen, src = _run(root, p)
    assert started == []  # no thread for an in-process source
    assert inline == threaded
    assert sorted(x[2:] for x in seen) == sorted(x[2:] for x in seen_threaded)  # the same pods, the same verdicts
    listed = [(x["metadata"]["namespace"], x["metadata"]["name"]) for x in src.list_pods(None)]
    checked = [(ns, pod) for _, _, ns, pod, _ in seen]
    assert checked == [k for k in listed if k in set(checked)]  # progress in the order pods were listed
    assert [d for d, *_ in seen] == list(range(1, len(seen) + 1)) and len(seen) > 60
    assert {s for *_, s in seen} == {"ok", "fail"}


def test_a_whole_check_error_comes_after_the_pods_before_it(tmp_path, p, monkeypatch):
    root = _cluster(p, 40).write(tmp_path / "cluster")

    class Breaks(InProcess):
        def fetch_dump(self, pod):
            if pod["metadata"]["name"] == "app-017":
                raise MeshcaError("ApiServerUnreachable", "context sim", reason="gone")
            return super().fetch_dump(pod)

    seen: list = []
    with pytest.raises(MeshcaError) as err:
        _run(root, p, Breaks, seen=seen)
    name = err.value.name
    assert name == "ApiServerUnreachable"
    assert [pod for *_, pod, _ in seen][-1] == "app-016" and len(seen) > 17  # every pod listed before it, then the error
