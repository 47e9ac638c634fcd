#!/usr/bin/env bash
# Regenerates grpc_predict_v2.pb.go and grpc_predict_v2_grpc.pb.go from
# grpc_predict_v2.proto (go generate ./serving/kserve/inferencepb). Needs
# protoc (Debian: apt-get install protobuf-compiler) and the Go toolchain; the
# plugins are built at the pinned versions into a temporary folder, so go.mod
# is left alone. Building and testing tfcat need none of this: the generated
# files are committed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
command -v protoc >/dev/null || { echo "generate.sh: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN=$bin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN=$bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
protoc -I . \
	--plugin=protoc-gen-go="$bin/protoc-gen-go" --go_out=. --go_opt=paths=source_relative \
	--plugin=protoc-gen-go-grpc="$bin/protoc-gen-go-grpc" --go-grpc_out=. --go-grpc_opt=paths=source_relative \
	grpc_predict_v2.proto
