# Production image: PostgreSQL backend, several uvicorn workers, non-root, health-checked.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv/shokai

RUN groupadd --system shokai && useradd --system --gid shokai --home /srv/shokai --shell /usr/sbin/nologin shokai

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --editable . && chown -R shokai:shokai /srv/shokai

USER shokai
EXPOSE 8000
ENV SHOKAI_DATA_DIR=/srv/shokai/data WEB_CONCURRENCY=4

HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"

# Migrations run once per release (`shokai db upgrade`), not in every worker. `shokai gateway` starts
# uvicorn with the project's options (app/serving.py): no uvicorn access log, whose lines carry query
# strings and so names and birth dates (GET /audit/subject-access); JSON log lines; no server header.
# Do not replace it with a plain `uvicorn` command line.
CMD ["sh", "-c", "exec shokai gateway --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY}"]
