# cnnserve images (docs/deployment.md has the commands):
#
#   gpu (default: the last stage)  NVIDIA CUDA 13.0 + cuDNN 9 runtime, onnxruntime-gpu, no torch
#   cpu                            python:3.12-slim, onnxruntime (CPU build), no torch
#
# Both serve the model repository baked in at /models (override it with a volume). It comes from
#   MODEL_SOURCE=build (default)   the repository-build stage: torch (CPU) trains and exports the zoo
#                                  (build args MODELS=a,b and QUICK=1 are passed on to `export build`);
#   MODEL_SOURCE=context           a repository already built on the host, at MODEL_REPOSITORY
#                                  (default model_repository/) in the build context; torch is not installed.
#
# Python packages are pinned in deploy/requirements-*.txt (transitive ones too: installed with
# --no-deps, then `pip check`); tests/deploy/pins.py regenerates them.

ARG MODEL_SOURCE=build

FROM python:3.12-slim-bookworm AS python-base
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# ---------------------------------------------------------------- model repository: built here
FROM python-base AS repository-build
WORKDIR /src
COPY deploy/requirements-build.txt deploy/
# torch comes from the PyTorch CPU index: PyPI's wheel of the same version is the CUDA build (GBs).
RUN pip install --no-cache-dir --no-deps --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install --no-cache-dir --no-deps -r deploy/requirements-build.txt \
    && pip check
COPY repository/ repository/
COPY models/ models/
COPY training/ training/
COPY export/ export/
ARG MODELS=""
ARG QUICK=0
RUN set -eu; \
    set -- --repository /model_repository; \
    if [ -n "${MODELS}" ]; then set -- "$@" --models "${MODELS}"; fi; \
    if [ "${QUICK}" = 1 ]; then set -- "$@" --quick; fi; \
    python -m export build "$@"

# ------------------------------------------------- model repository: prebuilt, from the context
FROM scratch AS repository-context
ARG MODEL_REPOSITORY=model_repository
COPY ${MODEL_REPOSITORY}/ /model_repository/

# One of the two stages above, chosen by MODEL_SOURCE (BuildKit builds only the one chosen).
# hadolint ignore=DL3006
FROM repository-${MODEL_SOURCE} AS repository

# ------------------------------------------------------------------- cpu: virtual environment
FROM python-base AS cpu-venv
COPY deploy/requirements-runtime.txt deploy/requirements-cpu.txt /tmp/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps -r /tmp/requirements-cpu.txt \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes pip

# ---------------------------------------------------------------------------------------- cpu
FROM python-base AS cpu
LABEL org.opencontainers.image.title="cnnserve (cpu)" \
      org.opencontainers.image.description="Classic CNNs served on ONNX Runtime (CPU); no torch" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 cnnserve \
    && useradd --system --uid 10001 --gid cnnserve --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cnnserve
COPY --from=cpu-venv /opt/venv /opt/venv
WORKDIR /app
COPY repository/ repository/
COPY service/ service/
COPY deploy/healthcheck.py ./
COPY --from=repository /model_repository/ /models/
# HOME: the user has none, and ONNX Runtime keeps a file there (/tmp is writable in compose and k8s).
# ORT_DISABLE_TELEMETRY: no usage telemetry from ONNX Runtime (service/__init__.py sets it too).
# CNNSERVE_WORKERS=0: one server process per CPU the container may use (its CPU limit, docker --cpus);
# the supervisor keeps the workers' metrics and status files in a folder of its own under /tmp.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    ORT_DISABLE_TELEMETRY=1 \
    CNNSERVE_REPOSITORY=/models \
    CNNSERVE_HOST=0.0.0.0 \
    CNNSERVE_PORT=8000 \
    CNNSERVE_GRPC_PORT=8001 \
    CNNSERVE_WORKERS=0 \
    CNNSERVE_PROVIDERS=CPUExecutionProvider
RUN python -m repository check /models
USER 10001:10001
EXPOSE 8000 8001
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["python", "/app/healthcheck.py"]
ENTRYPOINT ["python", "-m", "service"]

# ------------------------------------------------------------------- gpu: CUDA + cuDNN + Python
FROM nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04 AS cuda-python
# Ubuntu's archive keeps only the newest build of a package, so exact apt pins would break the
# build at the next security update; the base image's tag pins the release (24.04, Python 3.12).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3.12 \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# ------------------------------------------------------------------- gpu: virtual environment
FROM cuda-python AS gpu-venv
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3.12-venv \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/requirements-runtime.txt deploy/requirements-gpu.txt /tmp/
RUN python3.12 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps -r /tmp/requirements-gpu.txt \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes pip

# ---------------------------------------------------------------------------------------- gpu
FROM cuda-python AS gpu
LABEL org.opencontainers.image.title="cnnserve (gpu)" \
      org.opencontainers.image.description="Classic CNNs served on ONNX Runtime (CUDA 13, cuDNN 9); no torch" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 cnnserve \
    && useradd --system --uid 10001 --gid cnnserve --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cnnserve
COPY --from=gpu-venv /opt/venv /opt/venv
WORKDIR /app
COPY repository/ repository/
COPY service/ service/
COPY deploy/healthcheck.py ./
COPY --from=repository /model_repository/ /models/
# HOME: the user has none, and ONNX Runtime keeps a file there (/tmp is writable in compose and k8s).
# ORT_DISABLE_TELEMETRY: no usage telemetry from ONNX Runtime (service/__init__.py sets it too).
# CNNSERVE_WORKERS=0: one server process per CPU the container may use (its CPU limit), each with its
# own sessions on the GPU; the supervisor keeps the workers' metrics and status files under /tmp.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    ORT_DISABLE_TELEMETRY=1 \
    CNNSERVE_REPOSITORY=/models \
    CNNSERVE_HOST=0.0.0.0 \
    CNNSERVE_PORT=8000 \
    CNNSERVE_GRPC_PORT=8001 \
    CNNSERVE_WORKERS=0 \
    CNNSERVE_PROVIDERS=CUDAExecutionProvider,CPUExecutionProvider
RUN python -m repository check /models
USER 10001:10001
EXPOSE 8000 8001
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["python", "/app/healthcheck.py"]
ENTRYPOINT ["python", "-m", "service"]
