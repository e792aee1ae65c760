"""Every caller/callee pair after every step, judged by equivalence class, not pair by pair.

A workload's *class* is the tuple of the distinct proxy states of its pods (``ProxyState.key``:
the chain it presents, the roots it trusts, its trust domain and aliases). Two workloads of one
class get the same verdict against any peer, so the verdict of a pair is the verdict of its two
classes (a real handshake per new pair of states, ``tls.Judge``), and what the report counts
follows from how many pairs fall in each class pair:

- the built-in traffic modes (``default``, ``full``, ``local``) are unions of blocks, "every
  application workload calls the entry of every other namespace" and "every gateway calls every
  entry"; per namespace this book keeps how many application workloads it has in each class and
  its entry's class, and, summed over namespaces and clusters, the class histograms and the
  class pairs that a namespace's exclusion of itself takes away. So the count of pairs in a class
  pair is a product of two histograms minus a correction, all kept up to date per namespace;
- a traffic file's edges are explicit: each edge is counted once in its class pair, and a
  workload that changes class moves only its own edges.

A step re-judges only the workloads it touched (``Mesh.dirty``); the namespaces, clusters and
histograms they belong to are updated by removing their old contribution and adding the new one.
Failed pairs are listed (in the order the pair list has always had) only when some class pair
fails, and only from the classes that fail: the work is the size of that list.

Snapshots for the timeline are kept as deltas (``SnapshotLog``): per row, the steps where its
revision or its count of failing pairs changed.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping
from typing import Callable, Iterator

from .mesh import SYSTEM_NS, Mesh
from .tls import ProxyState
from .traffic import MODES, Ref, TrafficGraph, TrafficSpec, ref_name, workload_refs

NO_SIDECAR = ProxyState(None, (), "", (), "no sidecar")
Verdict = tuple[bool, str]


# ----------------------------------------------------------------------------- snapshots as deltas


class SnapshotLog:
    """Per row (``cluster/namespace``): the snapshot indices where its value changed, and the values.

    A value is ``(revision, failing pairs)``; None marks a row that is gone."""

    def __init__(self) -> None:
        self.count = 0
        self.rows: dict[str, tuple[list[int], list[tuple[str, int] | None]]] = {}
        self.current: dict[str, tuple[str, int]] = {}

    def commit(self, changes: Mapping[str, tuple[str, int] | None]) -> "SnapshotView":
        index = self.count
        self.count += 1
        for row, value in changes.items():
            if self.current.get(row) == value:
                continue
            steps, values = self.rows.setdefault(row, ([], []))
            steps.append(index)
            values.append(value)
            if value is None:
                self.current.pop(row, None)
            else:
                self.current[row] = value
        return SnapshotView(self, index)

    def value(self, row: str, index: int) -> tuple[str, int] | None:
        hit = self.rows.get(row)
        if hit is None:
            return None
        steps, values = hit
        i = bisect.bisect_right(steps, index) - 1
        return values[i] if i >= 0 else None


class SnapshotView(Mapping):
    """One step's snapshot, read from the log: ``row -> (revision, failing pairs)``."""

    __slots__ = ("log", "index")

    def __init__(self, log: SnapshotLog, index: int) -> None:
        self.log = log
        self.index = index

    def __getitem__(self, row: str) -> tuple[str, int]:
        value = self.log.value(row, self.index)
        if value is None:
            raise KeyError(row)
        return value

    def __iter__(self) -> Iterator[str]:
        return (row for row in self.log.rows if self.log.value(row, self.index) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"SnapshotView({dict(self)!r})"


# ----------------------------------------------------------------------------- the book


def _add(counter: Counter, key, n: int) -> None:
    v = counter.get(key, 0) + n
    if v:
        counter[key] = v
    else:
        counter.pop(key, None)


class PairBook:
    """Classes of the mesh's workloads and the count of pairs per class pair, kept up to date."""

    def __init__(self, spec: TrafficSpec, app_namespaces: tuple[str, ...], verdict: Callable[[list[ProxyState], list[ProxyState]], Verdict]) -> None:
        self.spec = spec
        self.app_namespaces = frozenset(app_namespaces)
        self.structured = spec.mode in MODES
        self.graph = TrafficGraph(spec, tuple(app_namespaces))
        self.verdict_of = verdict
        # classes
        self.class_ids: dict[tuple, int] = {}
        self.members: list[list[ProxyState]] = []
        self.cls: dict[Ref, int] = {}
        self.rev: dict[Ref, str] = {}
        self.objs: dict[Ref, object] = {}  # the workload object each class is of
        self.memo: dict[tuple[int, int], Verdict] = {}
        self.state_keys: dict[tuple, tuple[tuple, ProxyState]] = {}
        # rows: revisions of their workloads
        self.row_revs: dict[str, Counter] = {}
        self.bad: dict[str, int] = {}
        self.structure = -1
        self.last: tuple[int, list[dict]] | None = None  # (total pairs, failed pairs)

    # -- classes ---------------------------------------------------------------------------------

    def _state(self, p) -> tuple[tuple, ProxyState]:
        """A pod's proxy state and its key, the key computed once per (chain, bundle, domains)."""
        if not p.meshed:
            return NO_SIDECAR.key, NO_SIDECAR
        ident = (id(p.credential), tuple(id(r) for r in p.bundle), p.trust_domain, p.aliases, p.problem)
        hit = self.state_keys.get(ident)
        if hit is not None and hit[1].credential is p.credential and all(a is b for a, b in zip(hit[1].bundle, p.bundle)):
            return hit
        st = ProxyState(p.credential, p.bundle, p.trust_domain, p.aliases, p.problem)
        self.state_keys[ident] = (st.key, st)  # the state holds the objects: their ids stay unique
        return st.key, st

    def _classify(self, w) -> tuple[int, str]:
        states: dict[tuple, ProxyState] = {}
        revs = set()
        for p in w.pods:
            k, st = self._state(p)
            states.setdefault(k, st)
            revs.add(p.revision or "no sidecar")
        key = tuple(states) if len(states) < 2 else tuple(sorted(states, key=repr))
        cid = self.class_ids.get(key)
        if cid is None:
            cid = self.class_ids[key] = len(self.members)
            self.members.append([states[k] for k in key])
        return cid, (next(iter(revs)) if len(revs) == 1 else ("mixed" if revs else "no pods"))

    def verdict(self, x: int, y: int) -> Verdict:
        v = self.memo.get((x, y))
        if v is None:
            v = self.memo[(x, y)] = self.verdict_of(self.members[x], self.members[y])
        return v

    def _row(self, ref: Ref) -> str | None:
        return f"{ref[0]}/{ref[1]}" if ref[1] in self.app_namespaces or ref[1] == SYSTEM_NS else None

    # -- one judgement -----------------------------------------------------------------------------

    def judge(self, mesh: Mesh) -> tuple[int, list[dict], dict[str, tuple[str, int] | None]]:
        """(pairs, failed pairs in pair-list order, rows whose snapshot value may have changed)."""
        dirty = mesh.dirty
        mesh.dirty = set()
        rows_touched: set[str] = set()
        rebuild = self.structure != mesh.structure
        gateways_only = False
        if rebuild and self.structure >= 0:
            # Added and deleted workloads are marked dirty too: only the pair list's structure
            # needs rebuilding, and only when an application (or a traffic file's edge) changed.
            present = {}
            for ref in dirty:
                c = mesh.clusters.get(ref[0])
                w = c.workloads.get(ref[1:]) if c is not None else None
                if w is not None:
                    present[ref] = w
            moved = [ref for ref in dirty if self.objs.get(ref) is not present.get(ref)]
            gateways_only = self.structured and all(
                (self.objs.get(ref) is None or self.objs[ref].gateway or ref[1] not in self.app_namespaces)
                and (present.get(ref) is None or present[ref].gateway or ref[1] not in self.app_namespaces)
                for ref in moved
            )
            gone = [ref for ref in moved if ref in self.objs]  # deleted, or replaced by another object
        elif rebuild:
            present = {}
            for c in mesh.clusters.values():
                for (ns, name), w in c.workloads.items():
                    present[(c.name, ns, name)] = w
            gone = [ref for ref in self.cls if ref not in present]
        else:
            present, gone = {}, []
            for ref in dirty:
                c = mesh.clusters.get(ref[0])
                w = c.workloads.get(ref[1:]) if c is not None else None
                if w is not None:
                    present[ref] = w
        for ref in gone:
            row = self._row(ref)
            if row is not None:
                _add(self.row_revs.setdefault(row, Counter()), self.rev[ref], -1)
                rows_touched.add(row)
            if gateways_only and ref in self.gateway_set:
                self.gateway_set.discard(ref)
                self.gateways.remove(ref)
                _add(self.G, self.cls[ref], -1)
            del self.cls[ref], self.rev[ref], self.objs[ref]
        todo = list(present.items())
        if not rebuild and not todo and self.last is not None:
            total, failed = self.last
            return total, failed, {}
        changed: list[tuple[Ref, int | None, int]] = []
        for ref, w in todo:
            cid, rev = self._classify(w)
            old_cls, old_rev = self.cls.get(ref), self.rev.get(ref)
            row = self._row(ref)
            if row is not None and old_rev != rev:
                revs = self.row_revs.setdefault(row, Counter())
                if old_rev is not None:
                    _add(revs, old_rev, -1)
                _add(revs, rev, 1)
                rows_touched.add(row)
            self.rev[ref] = rev
            if gateways_only and ref not in self.objs:  # a workload added: no old class to move
                self.objs[ref] = w
                self.cls[ref] = cid
                if w.gateway:
                    self.gateway_set.add(ref)
                    bisect.insort(self.gateways, ref)
                    _add(self.G, cid, 1)
                continue
            self.objs[ref] = w
            if old_cls != cid:
                changed.append((ref, old_cls, cid))
        if rebuild and not gateways_only:
            for ref, _, cid in changed:
                self.cls[ref] = cid
            self.structure = mesh.structure
            self._build(mesh)
        elif changed:
            self._update(changed)
        self.structure = mesh.structure
        counts = self._counts()
        total = sum(counts.values())
        failing = {xy for xy in counts if not self.verdict(*xy)[0]}
        failed = self._failed(failing) if failing else []
        bad: dict[str, int] = {}
        for f in failed:
            for side in (f["client"], f["server"]):
                row = side.rsplit("/", 1)[0]
                bad[row] = bad.get(row, 0) + 1
        rows_touched |= set(bad) | set(self.bad)
        self.bad = bad
        self.last = (total, failed)
        values: dict[str, tuple[str, int] | None] = {}
        for row in rows_touched:
            revs = self.row_revs.get(row)
            if not revs:
                values[row] = None
            else:
                values[row] = (next(iter(revs)) if len(revs) == 1 else "mixed", bad.get(row, 0))
        return total, failed, values

    # -- counting, by traffic kind ---------------------------------------------------------------

    def _build(self, mesh: Mesh) -> None:
        """The pair list's structure (after a workload was added or deleted), then every count."""
        apps, gateways = workload_refs(mesh, self.app_namespaces)
        if not self.structured:
            self.edges = self.graph._build(apps, sorted(gateways))
            self.out_edges: dict[Ref, list[Ref]] = {}
            self.in_edges: dict[Ref, list[Ref]] = {}
            self.edge_counts: Counter = Counter()
            for a, b in self.edges:
                self.out_edges.setdefault(a, []).append(b)
                self.in_edges.setdefault(b, []).append(a)
                _add(self.edge_counts, (self.cls[a], self.cls[b]), 1)
            return
        entry: dict[tuple[str, str], Ref] = {}
        for ref in apps:  # creation order: the entry is the namespace's first workload (api)
            entry.setdefault((ref[0], ref[1]), ref)
        self.entry = entry
        self.apps = sorted(apps)
        self.app_set = set(apps)
        self.gateways = sorted(gateways)
        self.gateway_set = set(gateways)
        self.by_ns: dict[tuple[str, str], list[Ref]] = {}
        for ref in self.apps:
            self.by_ns.setdefault((ref[0], ref[1]), []).append(ref)
        self.entry_of_ns = {k: e for k, e in entry.items()}
        self.is_entry = {e: k for k, e in entry.items()}
        # per namespace: classes of its applications and of its entry
        self.ns_apps: dict[tuple[str, str], Counter] = {}
        self.ns_entry: dict[tuple[str, str], int] = {}
        self.A: Counter = Counter()
        self.E: Counter = Counter()
        self.S: Counter = Counter()  # sum over namespaces of A_ns[x] * [entry class == y]
        self.Q: Counter = Counter()  # sum over namespaces of A_ns[x] * A_ns[y] (full)
        self.A_cl: dict[str, Counter] = {}
        self.E_cl: dict[str, Counter] = {}
        self.P: Counter = Counter()  # sum over clusters of A_cl[x] * E_cl[y] (local)
        self.P_cl: dict[str, Counter] = {}
        for k in self.by_ns:
            self._ns_add(k, +1)
        for cl in {k[0] for k in self.by_ns}:
            self._cluster_product(cl)
        self.G: Counter = Counter(self.cls[g] for g in self.gateways)

    def _ns_add(self, k: tuple[str, str], sign: int) -> None:
        if sign > 0:
            comp = Counter(self.cls[r] for r in self.by_ns[k])
            self.ns_apps[k] = comp
            self.ns_entry[k] = self.cls[self.entry[k]]
        comp, e = self.ns_apps[k], self.ns_entry[k]
        a_cl = self.A_cl.setdefault(k[0], Counter())
        e_cl = self.E_cl.setdefault(k[0], Counter())
        for x, n in comp.items():
            _add(self.A, x, sign * n)
            _add(a_cl, x, sign * n)
            _add(self.S, (x, e), sign * n)
            if self.spec.mode == "full":
                for y, m in comp.items():
                    _add(self.Q, (x, y), sign * n * m)
        _add(self.E, e, sign)
        _add(e_cl, e, sign)

    def _cluster_product(self, cl: str) -> None:
        if self.spec.mode != "local":
            return
        for xy, n in self.P_cl.get(cl, {}).items():
            _add(self.P, xy, -n)
        prod = Counter({(x, y): n * m for x, n in self.A_cl.get(cl, {}).items() for y, m in self.E_cl.get(cl, {}).items()})
        self.P_cl[cl] = prod
        for xy, n in prod.items():
            _add(self.P, xy, n)

    def _update(self, changed: list[tuple[Ref, int | None, int]]) -> None:
        if not self.structured:
            for ref, old, new in changed:
                for b in self.out_edges.get(ref, ()):
                    _add(self.edge_counts, (old, self.cls[b]), -1)
                    _add(self.edge_counts, (new, self.cls[b]), 1)
                self.cls[ref] = new  # before the in-edges: a self-loop never exists (a != b)
                for a in self.in_edges.get(ref, ()):
                    _add(self.edge_counts, (self.cls[a], old), -1)
                    _add(self.edge_counts, (self.cls[a], new), 1)
            return
        namespaces = {(ref[0], ref[1]) for ref, _, _ in changed if ref in self.app_set}
        for k in namespaces:
            self._ns_add(k, -1)
        for ref, old, new in changed:
            self.cls[ref] = new
            if ref in self.gateway_set:
                _add(self.G, old, -1)
                _add(self.G, new, 1)
        for k in namespaces:
            self._ns_add(k, +1)
        for cl in {k[0] for k in namespaces}:
            self._cluster_product(cl)

    def _counts(self) -> Counter:
        """Pairs per (client class, server class)."""
        if not self.structured:
            return self.edge_counts
        out: Counter = Counter()
        mode = self.spec.mode
        if mode == "default":
            for x, n in self.A.items():
                for y, m in self.E.items():
                    _add(out, (x, y), n * m - self.S.get((x, y), 0))
        elif mode == "local":
            for xy, n in self.P.items():
                _add(out, xy, n - self.S.get(xy, 0))
        else:  # full
            for x, n in self.A.items():
                for y, m in self.A.items():
                    _add(out, (x, y), n * m - self.Q.get((x, y), 0))
        if self.spec.gateways:
            for z, n in self.G.items():
                for y, m in self.E.items():
                    _add(out, (z, y), n * m)
        return out

    # -- the failed pairs, in pair-list order ----------------------------------------------------

    def _failed(self, failing: set[tuple[int, int]]) -> list[dict]:
        out: list[dict] = []
        cls = self.cls

        def emit(a: Ref, b: Ref) -> None:
            out.append({"client": ref_name(a), "server": ref_name(b), "reason": self.memo[(cls[a], cls[b])][1]})

        if not self.structured:
            for a, b in self.edges:
                if (cls[a], cls[b]) in failing:
                    emit(a, b)
            return out
        bad_targets: dict[int, frozenset[int]] = {}
        for x, y in failing:
            bad_targets[x] = bad_targets.get(x, frozenset()) | {y}
        mode = self.spec.mode
        cache: dict[frozenset[int], list[tuple[tuple[str, str], Ref]]] = {}

        def targets(ys: frozenset[int]) -> list[tuple[tuple[str, str], Ref]]:
            hit = cache.get(ys)
            if hit is None:
                if mode == "full":
                    hit = [(k, b) for k in self.entry for b in self.by_ns[k] if cls[b] in ys]
                else:
                    hit = [(k, e) for k, e in self.entry.items() if cls[e] in ys]
                cache[ys] = hit
            return hit

        for a in self.apps:
            ys = bad_targets.get(cls[a])
            if not ys:
                continue
            own = (a[0], a[1])
            for k, b in targets(ys):
                if k == own or (mode == "local" and k[0] != a[0]):
                    continue
                emit(a, b)
        if self.spec.gateways:
            for g in self.gateways:
                ys = bad_targets.get(cls[g])
                if not ys:
                    continue
                for k, e in self.entry.items():
                    if cls[e] in ys:
                        emit(g, e)
        return out
