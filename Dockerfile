# tfcat image. VARIANT=cpu (default) runs on a slim Debian; VARIANT=gpu runs on
# NVIDIA's CUDA 12 + cuDNN 9 runtime image with the CUDA-enabled libtensorflow.
#
#   docker build --build-arg TENSORFLOW_VERSION="$(cat TENSORFLOW_VERSION)" \
#                --build-arg TFCAT_VERSION="$(git describe --tags --always --dirty)" -t tfcat .
#   docker build --build-arg VARIANT=gpu --build-arg TENSORFLOW_VERSION="$(cat TENSORFLOW_VERSION)" -t tfcat:gpu .
#   docker run --rm -v "$PWD:/work" tfcat train --data /work/training_data --model-dir /work/model
#   docker run --rm --gpus all -v "$PWD:/work" tfcat:gpu train --data /work/training_data --device /gpu:0
#
# The TensorFlow version is not written here: scripts/install-libtensorflow.sh
# reads it from TENSORFLOW_VERSION, with the wheel's checksum. The build argument
# TENSORFLOW_VERSION only labels the image, and the build fails unless it equals
# the file. The base images are build arguments too (defaults: the official
# images); scripts/container-check.sh builds this file from local stand-ins
# (--gpu: the GPU variant, on a CUDA stand-in made from NVIDIA's PyPI wheels).
#
# GPU_BASE brings the CUDA runtime and cuDNN the CUDA-enabled libtensorflow opens
# by soname. The tensorflow 2.18 wheel was built with CUDA 12.5.1 and cuDNN 9.3
# (its build_info; its and-cuda extra pins nvidia-cudnn-cu12==9.3.0.75), and
# TensorFlow refuses a cuDNN of a lower minor version than it was built with. The
# 12.5.1 cuDNN images carry cuDNN 9.2.1; the 12.6.1 ones carry 9.3.0.75, and
# CUDA's 12.x libraries keep their sonames and run what 12.5 built. Their
# NVIDIA_REQUIRE_CUDA asks the host for a driver that supports CUDA 12.6 (560 or
# later, or a datacenter driver branch the image lists).
ARG VARIANT=cpu
ARG GO_VERSION=1.26
ARG GO_IMAGE=golang:${GO_VERSION}-bookworm
ARG CPU_BASE=debian:bookworm-slim
ARG GPU_BASE=nvidia/cuda:12.6.1-cudnn-runtime-ubuntu22.04

FROM ${GO_IMAGE} AS build
ARG VARIANT
ARG TENSORFLOW_VERSION
ARG TFCAT_VERSION=dev
# A build whose HTTPS goes through an inspecting proxy mounts the proxy's CA bundle
# for the build only and names it in these (scripts/container-check.sh does);
# nothing of it stays in the image. Unset, the base image's certificates are used.
ARG SSL_CERT_FILE
ARG PIP_CERT
# Debian's security updates come with new versions: the packages are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip libjpeg62-turbo-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV TFCAT_LIBTENSORFLOW=/opt/tfcat/lib/libtensorflow
# The wheel's libraries carry debug information (libtensorflow_cc.so.2: 632 MB,
# 457 MB stripped); tfcat is linked first, then the libraries are stripped.
RUN want=$(tr -d ' \n' < TENSORFLOW_VERSION) \
 && if [ "$TENSORFLOW_VERSION" != "$want" ]; then \
      echo "build argument TENSORFLOW_VERSION='$TENSORFLOW_VERSION' differs from the file TENSORFLOW_VERSION ($want): pass --build-arg TENSORFLOW_VERSION=\"\$(cat TENSORFLOW_VERSION)\"" >&2; exit 1; \
    fi \
 && if [ "$VARIANT" = gpu ]; then bash scripts/install-libtensorflow.sh --gpu; else bash scripts/install-libtensorflow.sh; fi \
 && make build TF_PREFIX=/opt/tfcat/lib/libtensorflow TFCAT_VERSION="$TFCAT_VERSION" \
 && strip --strip-unneeded /opt/tfcat/lib/libtensorflow/lib/libtensorflow_cc.so.2 /opt/tfcat/lib/libtensorflow/lib/libtensorflow_framework.so.2 \
 && mkdir -p /opt/tfcat/bin /opt/tfcat/lib/extra \
 && cp bin/tfcat /opt/tfcat/bin/ \
 && cp scripts/container-healthcheck.sh /opt/tfcat/bin/tfcat-healthcheck \
 && cp -L /usr/lib/x86_64-linux-gnu/libjpeg.so.62 /opt/tfcat/lib/extra/

# The runtime bases; VARIANT picks one.
FROM ${CPU_BASE} AS base-cpu
FROM ${GPU_BASE} AS base-gpu

# hadolint ignore=DL3006
FROM base-${VARIANT} AS runtime
ARG TENSORFLOW_VERSION
ARG TFCAT_VERSION=dev
LABEL org.opencontainers.image.title="tfcat" \
      org.opencontainers.image.description="TensorFlow image classification in Go through the TensorFlow C API" \
      org.opencontainers.image.source="https://github.com/tfcat/tfcat" \
      org.opencontainers.image.version="${TFCAT_VERSION}" \
      com.github.tfcat.tensorflow.version="${TENSORFLOW_VERSION}"
RUN groupadd --system --gid 10001 tfcat \
 && useradd --system --uid 10001 --gid tfcat --create-home --home-dir /home/tfcat tfcat
# tfcat's rpath points at /opt/tfcat/lib/libtensorflow/lib; libjpeg comes along
# because the CUDA base (Ubuntu) has another soname.
COPY --from=build /opt/tfcat/lib/libtensorflow/lib /opt/tfcat/lib/libtensorflow/lib
COPY --from=build /opt/tfcat/lib/extra /opt/tfcat/lib/extra
COPY --from=build /opt/tfcat/bin/tfcat /opt/tfcat/bin/tfcat-healthcheck /usr/local/bin/
# TF_CPP_MIN_LOG_LEVEL=2 is tfcat's own default, set here too so that it is in
# place before libtensorflow loads and logs (oneDNN, CPU features) at load time.
# The CUDA base's LD_LIBRARY_PATH (/usr/local/nvidia/lib and lib64, where some
# hosts, GKE's among them, mount the driver) is kept after tfcat's folder.
ENV LD_LIBRARY_PATH=/opt/tfcat/lib/extra${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}} \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TF_FORCE_GPU_ALLOW_GROWTH=true
# For `tfcat serve`: asks the server for its model's status; other commands
# (train, predict, ...) report healthy. See scripts/container-healthcheck.sh.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["tfcat-healthcheck"]
# `tfcat serve` answers TensorFlow Serving's ports: REST on 8501 and gRPC on
# 8500. Its defaults listen on loopback, unreachable from outside a container:
# give it --addr 0.0.0.0:8501 --grpc-addr 0.0.0.0:8500 (deploy/kubernetes.yaml
# does; deploy/kserve.yaml uses KServe's 8080 and 8081).
EXPOSE 8500 8501
USER 10001:10001
WORKDIR /home/tfcat
ENTRYPOINT ["tfcat"]
CMD ["version"]
