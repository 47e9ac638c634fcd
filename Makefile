# tfcat build. Everything cgo needs is set here: no environment by hand.
#   make build   -> bin/tfcat, linked with an rpath into the libtensorflow prefix
#   make test    -> go vet + go test ./... (Python reference checks included),
#                   the numerics tests under each CPU kernel family, short
#                   fuzzing, and each quick benchmark run once
#   make demo    -> the README's first command
#   make container-check -> build the Docker image with podman and run it (root)
SHELL := /bin/bash
ROOT := $(CURDIR)
TF_PREFIX ?= $(or $(TFCAT_LIBTENSORFLOW),$(ROOT)/.libtensorflow)
TFCAT_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

export CGO_ENABLED := 1
export CGO_CFLAGS := -I$(TF_PREFIX)/include
export CGO_LDFLAGS := -L$(TF_PREFIX)/lib -Wl,-rpath,$(TF_PREFIX)/lib
# The Python reference stack the tests compare against.
export TFCAT_PYTHON ?= $(ROOT)/.venv/bin/python
# TensorFlow's C++ logging is noisy at INFO; warnings and errors still show.
export TF_CPP_MIN_LOG_LEVEL ?= 1

GO ?= go
LDFLAGS := -X main.version=$(TFCAT_VERSION)

.PHONY: all build libtensorflow python test vet unit numerics fuzz benchsmoke manifests demo bench container-check clean
all: build

libtensorflow: $(TF_PREFIX)/lib/libtensorflow.so
$(TF_PREFIX)/lib/libtensorflow.so: TENSORFLOW_VERSION scripts/libtensorflow.sha256 scripts/install-libtensorflow.sh
	bash scripts/install-libtensorflow.sh
	@touch $@

python:
	bash scripts/setup-python.sh

build: libtensorflow
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/tfcat ./cmd/tfcat

vet: libtensorflow
	$(GO) vet ./...

# scripts/failures.sh repeats the failing tests' lines at the end of the log.
# Package checkpoint needs no TensorFlow: it is tested without cgo too.
unit: libtensorflow python
	bash scripts/failures.sh $(GO) test -count=1 ./...
	CGO_ENABLED=0 bash scripts/failures.sh $(GO) test -count=1 ./checkpoint

# The numerics tests (Python parity, fused/unfused, oneDNN/Eigen, cluster,
# transfer, SavedModel, OpenCV parity) once per CPU kernel family that users'
# CPUs run: oneDNN at this CPU's ISA, capped at AVX512_CORE and at AVX2, and
# Eigen; the family TensorFlow picks here by itself ran in `unit`.
numerics: libtensorflow python
	GO=$(GO) bash scripts/failures.sh bash scripts/numerics.sh --skip-default

# The decoders, the request parser and the readers of model files take bytes
# from anywhere: fuzz them for a fixed short time on every test run (longer:
# make fuzz FUZZTIME=10m FUZZTIME_SHORT=10m). Each input must stay within 1 s
# and 256 MB (internal/fuzzlimit). Minimizing a new input is capped at 500
# runs: uncapped, it took up to a minute, with no progress reported.
# scripts/fuzz.sh tells Go's deadline race (a failure with no reproducer)
# from a real failure (a reproducer written under testdata/fuzz).
FUZZTIME ?= 20s
FUZZTIME_SHORT ?= 5s
FUZZFLAGS = -run=^$$ -fuzzminimizetime=500x
fuzz: libtensorflow
	GO=$(GO) GOFUZZFLAGS="$(FUZZFLAGS)" bash scripts/fuzz.sh dataset FuzzDecode $(FUZZTIME)
	GO=$(GO) GOFUZZFLAGS="$(FUZZFLAGS)" bash scripts/fuzz.sh serving FuzzParseRequest $(FUZZTIME)
	CGO_ENABLED=0 GO=$(GO) GOFUZZFLAGS="$(FUZZFLAGS)" bash scripts/fuzz.sh checkpoint FuzzState $(FUZZTIME_SHORT)
	CGO_ENABLED=0 GO=$(GO) GOFUZZFLAGS="$(FUZZFLAGS)" bash scripts/fuzz.sh checkpoint FuzzMetaGraph $(FUZZTIME_SHORT)
	CGO_ENABLED=0 GO=$(GO) GOFUZZFLAGS="$(FUZZFLAGS)" bash scripts/fuzz.sh checkpoint FuzzIndex $(FUZZTIME_SHORT)
	GO=$(GO) GOFUZZFLAGS="$(FUZZFLAGS)" bash scripts/fuzz.sh tfsession FuzzMetaGraph $(FUZZTIME_SHORT)
	GO=$(GO) GOFUZZFLAGS="$(FUZZFLAGS)" bash scripts/fuzz.sh tfsession FuzzRestoreIndex $(FUZZTIME_SHORT)
	GO=$(GO) GOFUZZFLAGS="$(FUZZFLAGS)" bash scripts/fuzz.sh savedmodel FuzzSavedModel $(FUZZTIME_SHORT)

# Benchmarks are outside `go test ./...`; run the quick ones once so that
# they keep compiling and running (a broken benchmark is found here, not on
# the day its numbers are needed).
benchsmoke: libtensorflow
	$(GO) test -run='^$$' -bench='^(BenchmarkAugment|BenchmarkTutorialStep|BenchmarkStep)$$' -benchtime=1x ./dataset/ ./trainer/

# The Kubernetes and KServe manifests in deploy/, checked offline as kubectl's
# strict client-side dry run would (deploy/validate, a module of its own), and
# each one's serve arguments run with bin/tfcat until every probe answers.
manifests: build
	bash scripts/check-manifests.sh --serve bin/tfcat

test: build python vet unit numerics fuzz benchsmoke manifests

demo: build
	bash scripts/demo.sh

container-check:
	bash scripts/container-check.sh

bench: build python
	bash scripts/bench.sh

clean:
	rm -rf bin
