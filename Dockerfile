# paperboy: one process per container. SQLite in the /data volume for one instance; set
# PAPERBOY_DATABASE_URL to PostgreSQL for several (see compose.yaml).
#
# The install step is the command .ci/run runs, word for word
#     python3 -m venv .venv && .venv/bin/pip install -e '.[test]'
# so every CI run proves it (no container engine runs in CI). The editable install points at
# /app, and the runtime stage keeps that path and the same base image.

FROM python:3.11-slim AS build
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY adapters ./adapters
RUN python3 -m venv .venv && .venv/bin/pip install -e '.[test]'
# Fail the build, not the first start, if the package does not import.
RUN .venv/bin/paperboy --help >/dev/null

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home paperboy \
    && mkdir -p /data \
    && chown paperboy:paperboy /data
WORKDIR /app
COPY --from=build --chown=root:root /app /app
COPY config.example.toml /app/config.example.toml
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PAPERBOY_DATA_DIR=/data
# SQLite database and the search index live here (each container keeps its own index).
VOLUME ["/data"]
USER paperboy
# Slack HTTP mode listens here ([slack] mode = "http"); Socket Mode and Discord need no port.
EXPOSE 3000
# GET /healthz and Prometheus GET /metrics, in every mode ([metrics] in config.example.toml).
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["paperboy"]
CMD ["run"]
