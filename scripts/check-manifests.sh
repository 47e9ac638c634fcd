#!/usr/bin/env bash
# Checks the Kubernetes manifests in deploy/ (kubernetes.yaml, kserve.yaml,
# tfjob.yaml) as `kubectl apply --dry-run=client --validate=strict` would with
# the API server's schemas, plus what a schema cannot express (tfcat's flags,
# ports, probes, volumes, user; KServe's choice of runtime). No cluster, no
# kubectl, no schema download: deploy/validate is a Go module of its own
# (k8s.io/api from the Go module proxy), so tfcat's go.mod never depends on
# Kubernetes. First its tests (each a deliberate mistake that must be found),
# then the validator on deploy/*.yaml.
#
# With --serve BIN it also runs that tfcat binary with each manifest's own
# `tfcat serve` args (addresses moved to loopback, the model to a small one it
# trains and exports): every probe's path must answer 200, the gRPC port must
# accept connections, SIGTERM must stop it with status 0 (TestServe).
#
#   bash scripts/check-manifests.sh                     # no libtensorflow needed
#   bash scripts/check-manifests.sh --serve bin/tfcat   # after make build
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
bin=
case "${1:-}" in
--serve)
	[[ -n ${2:-} ]] || { echo "usage: $0 [--serve TFCAT_BINARY]" >&2; exit 2; }
	bin=$(realpath "$2")
	[[ -x $bin ]] || { echo "$0: $2 is not an executable tfcat" >&2; exit 1; }
	;;
"") ;;
*) echo "usage: $0 [--serve TFCAT_BINARY]" >&2; exit 2 ;;
esac
cd deploy/validate
# Pure Go: no cgo (the Makefile exports CGO_ENABLED=1 and libtensorflow's
# flags for tfcat itself). go.sum is committed: -mod=readonly keeps it so.
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
go=${GO:-go}
"$go" vet ./...
TFCAT_BIN=$bin "$go" test -count=1 ./...
"$go" run . -cmd "$root/cmd/tfcat" -dockerfile "$root/Dockerfile" "$root"/deploy/*.yaml
