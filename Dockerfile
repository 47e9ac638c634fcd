# tfcat image. VARIANT=cpu (default) runs on a slim Debian; VARIANT=gpu runs on
# NVIDIA's CUDA 12 + cuDNN 9 runtime with the CUDA-enabled libtensorflow.
#
#   docker build -t tfcat .
#   docker build --build-arg VARIANT=gpu -t tfcat:gpu .
#   docker run --rm -v "$PWD:/work" tfcat train --data /work/training_data --model-dir /work/model
#   docker run --rm --gpus all -v "$PWD:/work" tfcat:gpu train --data /work/training_data --device /gpu:0
#
# The TensorFlow version is not written here: scripts/install-libtensorflow.sh
# reads it from TENSORFLOW_VERSION, with the wheel's checksum.
ARG VARIANT=cpu
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
ARG VARIANT
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
RUN if [ "$VARIANT" = gpu ]; then bash scripts/install-libtensorflow.sh --gpu; else bash scripts/install-libtensorflow.sh; fi \
 && make build TF_PREFIX=/opt/tfcat/lib/libtensorflow \
 && mkdir -p /opt/tfcat/bin /opt/tfcat/lib/extra \
 && cp bin/tfcat /opt/tfcat/bin/ \
 && cp -L /usr/lib/x86_64-linux-gnu/libjpeg.so.62 /opt/tfcat/lib/extra/

# The runtime bases; VARIANT picks one.
FROM debian:bookworm-slim AS base-cpu
FROM nvidia/cuda:12.5.1-cudnn-runtime-ubuntu22.04 AS base-gpu

# hadolint ignore=DL3006
FROM base-${VARIANT} AS runtime
RUN groupadd --system --gid 10001 tfcat \
 && useradd --system --uid 10001 --gid tfcat --create-home --home-dir /home/tfcat tfcat
# tfcat's rpath points at /opt/tfcat/lib/libtensorflow/lib; libjpeg comes along
# because the CUDA base (Ubuntu) has another soname.
COPY --from=build /opt/tfcat/lib/libtensorflow/lib /opt/tfcat/lib/libtensorflow/lib
COPY --from=build /opt/tfcat/lib/extra /opt/tfcat/lib/extra
COPY --from=build /opt/tfcat/bin/tfcat /usr/local/bin/tfcat
ENV LD_LIBRARY_PATH=/opt/tfcat/lib/extra \
    TF_FORCE_GPU_ALLOW_GROWTH=true
USER 10001:10001
WORKDIR /home/tfcat
ENTRYPOINT ["tfcat"]
CMD ["version"]
