"""An in-process source that asks for ``workers`` has its proxies judged by a few threads
(issue 13): the document, the progress calls and a whole-check error are those of judging the
pods one by one, in order."""

from __future__ import annotations

import pytest

from fakes.trust_cluster import DirSource, make_pki, sidecar_dump, standard_cluster
from meshca.errors import MeshcaError
from meshca.trust import runner
from meshca.trust.runner import CheckRequest, run_check

pytestmark = pytest.mark.filterwarnings("error")


class InProcess(DirSource):
    in_process = True
    workers = 1


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


def _run(root, p, workers, monkeypatch, source_cls=InProcess, seen=None, **kw):
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(source_cls, "workers", workers)
    monkeypatch.setattr(runner, "INLINE_CHUNK", 3)  # many chunks, so workers really interleave
    seen = [] if seen is None else seen
    src = source_cls(root)
    doc = run_check(src, CheckRequest("root-cert", meshca_roots=(p.meshca_root.cert,), **kw), progress=lambda d, t, e: seen.append((d, t, e["namespace"], e["pod"], e["status"])))
    return doc, seen, src


def test_workers_keep_the_order_and_the_verdict(tmp_path, p, monkeypatch):
    root = _cluster(p).write(tmp_path / "cluster")
    serial, seen1, _ = _run(root, p, 1, monkeypatch)
    parallel, seen4, src = _run(root, p, 4, monkeypatch)
    assert parallel == serial
    assert seen4 == seen1
    listed = [(x["metadata"]["namespace"], x["metadata"]["name"]) for x in src.list_pods(None)]
    checked = [(ns, pod) for _, _, ns, pod, _ in seen4]
    assert checked == [k for k in listed if k in set(checked)]  # progress in the order pods were listed
    assert [d for d, *_ in seen4] == list(range(1, len(seen4) + 1)) and len(seen4) > 60
    assert {s for *_, s in seen4} == {"ok", "fail"}


def test_workers_are_used_only_when_asked(tmp_path, p, monkeypatch):
    """Threads are started only for workers > 1 (the simulated source asks for one)."""
    from meshca.sim.source import SimSource

    assert SimSource.workers == 1
    root = _cluster(p, 10).write(tmp_path / "cluster")
    started = []
    real = runner.ThreadPoolExecutor

    def counting(*a, **kw):
        started.append(kw.get("max_workers"))
        return real(*a, **kw)

    monkeypatch.setattr(runner, "ThreadPoolExecutor", counting)
    _run(root, p, 1, monkeypatch)
    assert started == []
    _run(root, p, 3, monkeypatch)
    assert started == [3]
    _run(root, p, 8, monkeypatch, concurrency=2)
    assert started == [3, 2]


def test_a_whole_check_error_comes_after_the_pods_before_it(tmp_path, p, monkeypatch):
    root = _cluster(p, 40).write(tmp_path / "cluster")

    class Breaks(InProcess):
        def fetch_dump(self, pod):
            if pod["metadata"]["name"] == "app-017":
                raise MeshcaError("ApiServerUnreachable", "context sim", reason="gone")
            return super().fetch_dump(pod)

    outcomes = []
    for workers in (1, 4):
        seen: list = []
        with pytest.raises(MeshcaError) as err:
            _run(root, p, workers, monkeypatch, Breaks, seen=seen)
        outcomes.append((err.value.name, err.value.line(), seen))
    assert outcomes[0] == outcomes[1]
    name, _, seen = outcomes[0]
    assert name == "ApiServerUnreachable"
    assert [pod for *_, pod, _ in seen][-1] == "app-016" and len(seen) > 17  # every pod listed before it, then the error
