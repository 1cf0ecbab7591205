# quartapp's image: Python 3.13 (so Quart 0.23), served by Granian on port 4300.
# Start it with MySQL and Redis beside it: docker compose up --build
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    QUARTAPP_ENV=production

RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home quartapp
WORKDIR /app

COPY pyproject.toml README.md ./
COPY quartapp ./quartapp
# Editable: the app looks for templates/ and static/ beside the package, here in /app.

RUN pip install -e .
COPY templates ./templates
COPY static ./static

USER quartapp
EXPOSE 4300
CMD ["sh", "-c", "python -m quartapp migrate && exec granian --interface asgi --factory quartapp:create_app --host 0.0.0.0 --port 4300 --loop uvloop --workers \"${QUARTAPP_WORKERS:-1}\" --no-ws --workers-kill-timeout 10"]
