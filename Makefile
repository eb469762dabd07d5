# seccompd: build, lint and test. `make test` is the one command CI runs (.ci/run).
# The test cluster is real Kubernetes on this machine (see hack/cluster-up.sh); it needs root.
SHELL := /bin/bash
.DEFAULT_GOAL := test

# The cluster tests read the admin kubeconfig of the test cluster from here.
SECCOMPD_KUBECONFIG ?= $(CURDIR)/.cluster/kubeconfig
export SECCOMPD_KUBECONFIG
# The cluster tests are one binary (tests/cluster/, left out of plain `cargo test`); they share
# one cluster: run them one at a time. --show-output: the figure lines some print (the fault
# tests' `fault NAME: ...`) reach the log of a passing run too. CLUSTER_TEST_ARGS: more
# arguments for the test binary, e.g. `--skip binding::` on a release without what those
# tests need (the make_test bench names any it passes in its results file).
CLUSTER_TEST_ARGS ?=
INTEGRATION = cargo test --test cluster -- --test-threads=1 --show-output $(CLUSTER_TEST_ARGS)

.PHONY: test deps manifests lint unit check-cases arm64 integration cluster-up cluster-down demo bench-spo

deps:        ## Debian packages if missing + Kubernetes/etcd, Prometheus and Helm binaries (cached by version)
	hack/deps.sh

manifests:   ## render the Helm chart charts/seccompd into manifests/ (the one source of the install)
	hack/gen-manifests.sh

# check-doc-figures: measured figures in README.md and docs/ come from docs/results/.
lint:
	cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --test cluster -- -D warnings  # --all-targets leaves out test = false targets
	shellcheck -x --source-path=SCRIPTDIR hack/*.sh .ci/run
	hack/gen-manifests.sh --check
	python3 hack/check-doc-figures.py
	python3 hack/crate-graph.py

unit:        ## what plain `cargo test` runs: every crate's unit tests and the host tests (no cluster; root)
	cargo test --no-fail-fast

check-cases: ## the validation table's runc and crun columns, re-run under both runtimes (root)
	hack/check-cases.sh

# Before cluster-up, whose image (hack/seccompd-image.sh) then reuses the arm64 build.
arm64:       ## cross-build for linux/arm64 and run `seccompd validate` under qemu-user
	hack/arm64-check.sh

cluster-up:  ## node1 and node2; NODES=1 for node1 only, SECCOMPD_DEPLOY=0 without seccompd
	hack/cluster-up.sh

cluster-down:
	hack/cluster-down.sh

integration: ## against a running cluster (make cluster-up)
	$(INTEGRATION)

demo:        ## the seed walkthrough, step by step with real output, on a running cluster
	hack/demo.sh

bench-spo:   ## seccompd and the Security Profiles Operator side by side on a running cluster (not part of test)
	hack/bench-spo.sh

# The cluster always comes down again, also when up or the tests fail; the exit code of
# the first failure is kept.
test: deps lint unit check-cases arm64
	@rc=0; hack/cluster-up.sh && $(INTEGRATION) || rc=$$?; \
	hack/cluster-down.sh || { [ $$rc -ne 0 ] || rc=1; }; \
	exit $$rc
