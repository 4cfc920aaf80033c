# syntax=docker/dockerfile:1
# costgov's image. `make image` builds it (docker where an engine runs, else buildah; see
# hack/build-image.sh). Multi-stage: dependencies are installed from hash-pinned lock files
# in a build stage; the final stage has the interpreter and one virtual environment: no
# compiler, no pip, no setuptools. It runs as 65532:65532 and writes nothing outside /tmp,
# so it runs with a read-only root filesystem.
#
# Both bases must carry the same interpreter at the same path (the virtual environment
# points at it): python:3.11-slim for releases, or Debian bookworm bases made with
# mmdebstrap where registries cannot be reached (BUILD_BASE with python3-venv).
ARG BUILD_BASE=python:3.11-slim
ARG RUNTIME_BASE=python:3.11-slim

FROM ${BUILD_BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.lock requirements-build.lock ./
# Build tools in their own environment (pinned, hash-checked); the application's
# environment is made without pip. A host CA bundle (for a TLS-inspecting proxy) may be
# given as the build secret `hostca`: it is mounted for these steps only, never copied.
RUN --mount=type=secret,id=hostca \
    if [ -s /run/secrets/hostca ]; then export PIP_CERT=/run/secrets/hostca; fi \
 && python3 -m venv /opt/build-tools \
 && /opt/build-tools/bin/pip install --require-hashes --no-deps -r requirements-build.lock \
 && python3 -m venv --without-pip /opt/costgov \
 && /opt/build-tools/bin/pip --python /opt/costgov/bin/python install \
      --require-hashes --no-deps --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY operator ./operator
# The kubernetes client ships a second, asyncio copy of every API (kubernetes/aio, 68 MB)
# that costgov never imports: it stays out. Bytecode is compiled once, here.
RUN /opt/build-tools/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/build-tools/bin/pip --python /opt/costgov/bin/python install --no-deps /wheels/*.whl \
 && rm -rf /opt/costgov/lib/python3*/site-packages/kubernetes/aio \
 && find /opt/costgov -name __pycache__ -prune -exec rm -rf {} + \
 && /opt/costgov/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/costgov/lib

FROM ${RUNTIME_BASE}
ARG VERSION=0.1.0.dev0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="costgov" \
      org.opencontainers.image.description="A Kubernetes operator that prices GPU/AI workloads and enforces dollar budgets" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# A real 65532 user and group (useradd --user-group would pick GID 1000: 65532 is above
# GID_MAX); no pip, setuptools or ensurepip left in the base's interpreter.
RUN echo 'costgov:x:65532:65532:costgov:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'costgov:x:65532:' >> /etc/group \
 && rm -rf /usr/local/lib/python3*/site-packages/pip* /usr/local/lib/python3*/site-packages/setuptools* \
           /usr/local/lib/python3*/site-packages/wheel* /usr/local/lib/python3*/site-packages/_distutils_hack \
           /usr/local/lib/python3*/ensurepip /usr/local/bin/pip* /usr/lib/python3*/ensurepip
COPY --from=build /opt/costgov /opt/costgov
ENV PATH=/opt/costgov/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
USER 65532:65532
EXPOSE 9443 8080 8081
ENTRYPOINT ["costgov"]
CMD ["run"]
