# Every target creates .venv and installs the pinned dependencies itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.meshca-installed

.PHONY: test rehearse plan bench certs clean toolchain e2e cluster

$(STAMP): pyproject.toml policy/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

## make test: the whole test suite (unit, mocked Pulumi program, policy, rehearsal scenarios)
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

## make e2e: the end-to-end smoke (tests/e2e, marker e2e; not part of make test): the dev stack under the
## real Pulumi CLI against real kube-apiservers on loopback. Needs `make toolchain` and root (a network namespace).
e2e: $(STAMP)
	MESHCA_CODE_AUDIT=0 $(PY) -m pytest -m e2e tests/e2e -p no:cacheprovider -s

## make cluster: start local clusters (default: the dev stack's context; CONTEXTS=a,b) until Ctrl-C;
## prints the kubeconfig and the export lines
CONTEXTS ?= gke_acme-mesh-dev_us-central1_dev-1
cluster: $(STAMP)
	$(PY) -m testinfra.cluster --contexts '$(CONTEXTS)'

## make rehearse: the main job on the embedded default: the dev stack's whole route on a simulated mesh
rehearse: $(STAMP)
	$(VENV)/bin/meshca rehearse --stack dev --report rehearsal.html

## make plan: the dev stack's plan at its current position
plan: $(STAMP)
	$(VENV)/bin/meshca plan --stack dev

## make bench: the benchmarks behind BENCHMARKS.md (rewrites its four sections; ~30 minutes, most of it the 10x300 stack,
## plus the route at scale on the real engine: 3 loopback clusters x 300 namespaces, needs `make toolchain` and root; long)
bench: $(STAMP)
	$(PY) bench/check_bench.py --update-benchmarks
	$(PY) bench/rehearse_bench.py --update-benchmarks
	$(PY) bench/stack_scale_bench.py --update-benchmarks
	$(PY) bench/route_scale_bench.py --clusters 3 --namespaces 300 --update-benchmarks

## make certs: regenerate the throwaway test CA in samples/certs (TEST ONLY)
certs: $(STAMP)
	$(PY) scripts/gen-test-certs.py samples/certs

## make toolchain: build the real Pulumi CLI, kubernetes provider plugin, etcd, kube-apiserver, kube-controller-manager, kubectl and kwok from the Go module proxy at the versions in toolchain/pins.json, into ~/.cache/meshca/toolchain/<hash>/bin (a no-op once built; see toolchain/README.md)
toolchain:
	$(PYTHON) toolchain/build.py

clean:
	rm -rf $(VENV) .pytest_cache rehearsal.html
