#!/usr/bin/env bash
# Creates .venv with the Python reference stack tfcat's tests compare against:
# tensorflow-cpu (version from TENSORFLOW_VERSION), numpy, opencv-python-headless,
# pillow, and the benchmark's Keras, JAX, optax and matplotlib
# (scripts/requirements-reference.txt), then TensorFlow Serving's Python client
# (tensorflow-serving-api, the same version) without its dependencies: it requires the
# `tensorflow` distribution, which pip would install over tensorflow-cpu; what it needs,
# grpcio and protobuf, comes with tensorflow-cpu; and beside it the Prometheus Python
# client, prometheus-client (no dependencies), whose text parser reads tfcat serve's
# metrics in serving/monitoring's tests; then Triton's Python clients (tritonclient,
# http and grpc), also without their dependencies, beside the pinned packages they need
# that tensorflow-cpu lacks (serving/kserve's tests). Tests and benchmarks only: tfcat
# never runs Python. Reuses the wheel scripts/install-libtensorflow.sh cached.
# Idempotent: a venv whose first part is current gets only the clients that changed,
# installed in place (tests using the venv meanwhile keep running).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "setup-python: $*" >&2; exit 1; }

version=$(tr -d ' \n' <"$root/TENSORFLOW_VERSION")
venv=${TFCAT_VENV:-$root/.venv}
req="$root/scripts/requirements-reference.txt"
want="tensorflow-cpu==$version $(sha256sum "$req" | cut -d' ' -f1)"
api="tensorflow-serving-api==$version"
prom="prometheus-client==0.26.0"
# tritonclient 2.66.0 is the last whose gRPC stubs were generated for protobuf 5, which
# TensorFlow 2.18 needs (later ones need protobuf 6); it caps grpcio below 1.68, under
# tensorflow-cpu's, so it goes in without its dependencies (the stubs need grpcio 1.67.1
# or later). What its http client needs beyond tensorflow-cpu's packages —
# geventhttpclient and python-rapidjson, with theirs — is pinned here as pip resolved it.
triton="tritonclient==2.66.0 geventhttpclient==2.6.1 gevent==26.9.0 greenlet==3.5.6 zope.event==6.2 zope.interface==8.7 brotli==1.2.1 python-rapidjson==1.25"
stamp=$venv/.tfcat-stamp
# The stamp's first line is the reference stack's, its second the clients', its third
# Triton's clients'.
install_api() {
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$api" "$prom" ||
		die "pip install of $api and $prom failed"
	"$venv/bin/python" -c 'import grpc; from tensorflow_serving.apis import prediction_service_pb2_grpc, model_service_pb2_grpc' ||
		die "$api does not import"
	"$venv/bin/python" -c 'from prometheus_client.parser import text_string_to_metric_families' ||
		die "$prom does not import"
}
install_triton() {
	# shellcheck disable=SC2086 # one package a word
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps $triton ||
		die "pip install of $triton failed"
	"$venv/bin/python" -c 'import tritonclient.http, tritonclient.grpc' ||
		die "tritonclient does not import"
}
write_stamp() { printf '%s\n%s\n%s\n' "$want" "$api $prom" "$triton" >"$stamp"; }
if [[ -x $venv/bin/python && -f $stamp && $(head -n1 "$stamp") == "$want" ]]; then
	if [[ $(sed -n 2p "$stamp") != "$api $prom" ]]; then
		install_api
	fi
	if [[ $(sed -n 3p "$stamp") != "$triton" ]]; then
		install_triton
	fi
	write_stamp
	echo "Python reference environment ready in $venv"
	exit 0
fi
command -v python3 >/dev/null || die "python3 not found; install Python 3.11"
python3 -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' ||
	echo "setup-python: warning: tests were pinned with Python 3.11; found $(python3 --version)" >&2
if ! python3 -m venv --help >/dev/null 2>&1; then
	die "python3 has no venv module (apt-get install python3-venv)"
fi
rm -rf "$venv"
python3 -m venv "$venv" || die "creating $venv failed"
cache=${TFCAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfcat}/wheels
mkdir -p "$cache"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
	--find-links "$cache" "tensorflow-cpu==$version" -r "$req" ||
	die "pip install of the reference packages failed"
"$venv/bin/python" -c 'import tensorflow, cv2, numpy' || die "reference packages do not import"
install_api
install_triton
write_stamp
echo "Python reference environment ready in $venv"
