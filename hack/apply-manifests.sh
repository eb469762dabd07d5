#!/usr/bin/env bash
# Applies a kustomization (default: manifests/) to the test cluster the way a user of that
# cluster's Kubernetes release has to: before 1.36 there is no MutatingAdmissionPolicy v1, so
# SeccompProfileBinding's policy and policy binding are left out (docs/binding.md; with Helm,
# bindings.enabled=false) and everything else is applied. cluster-up.sh and the cluster tests
# that put the install back after changing it both apply through here.
#
# Usage: hack/apply-manifests.sh [KUSTOMIZATION_DIR]. Env: SECCOMPD_KUBECONFIG (default: the
# test cluster's admin kubeconfig).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

dir=${1:-$ROOT/manifests}
kubectl=("$CLUSTER/bin/kubectl" --kubeconfig "${SECCOMPD_KUBECONFIG:-$CLUSTER/kubeconfig}" --request-timeout=10s)

admission=$("${kubectl[@]}" get --raw /apis/admissionregistration.k8s.io/v1)
if [[ $admission == *'"mutatingadmissionpolicies"'* ]]; then
  "${kubectl[@]}" apply -k "$dir"
else
  log "no MutatingAdmissionPolicy v1 (Kubernetes before 1.36): SeccompProfileBinding left out"
  "${kubectl[@]}" kustomize "$dir" \
    | awk 'BEGIN { RS = "\n---\n"; ORS = "\n---\n" } !/(^|\n)kind: MutatingAdmissionPolicy(Binding)?\n/' \
    | "${kubectl[@]}" apply -f -
fi
