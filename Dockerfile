# syntax=docker/dockerfile:1
# Multi-stage: dependencies are installed from the hash-pinned lock file in a build stage;
# the final image has the virtual environment only (no compilers, no pip cache), runs as a
# non-root user and starts the operator.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/costgov
COPY requirements.lock ./
RUN /opt/costgov/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/costgov/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/costgov/bin/pip install --no-deps /wheels/*.whl

FROM python:3.11-slim
RUN useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin costgov
COPY --from=build /opt/costgov /opt/costgov
ENV PATH=/opt/costgov/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 9443 8080 8081
ENTRYPOINT ["costgov"]
CMD ["run"]
