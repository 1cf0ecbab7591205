# quartapp's image: Python 3.13 (so Quart 0.23), served by Granian on port 4300.
# Start it with MySQL and Redis beside it: docker compose up --build
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    QUARTAPP_ENV=production

RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home quartapp

# A normal install: the wheel carries the templates and static files inside the package.
# The sources stay out of /app, so the app runs from site-packages, as installed.
COPY pyproject.toml README.md LICENSE /src/
COPY quartapp /src/quartapp
COPY templates /src/templates
COPY static /src/static
RUN pip install /src && rm -rf /src

WORKDIR /app
USER quartapp
EXPOSE 4300
CMD ["sh", "-c", "python -m quartapp migrate && exec python -m quartapp serve --host 0.0.0.0 --port 4300"]
