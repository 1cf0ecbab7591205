# quartapp's image: Python 3.13 (so Quart 0.23), served by Granian on port 4300.
# Start it with MySQL and Redis beside it: docker compose up --build
#
# Every package comes from the locks, checked against their hashes: the wheel is built by
# the locked hatchling (requirements-build.lock), and the image holds exactly
# requirements.lock and that wheel.
FROM python:3.13-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements-build.lock /src/
RUN pip install --require-hashes --no-deps -r /src/requirements-build.lock
COPY pyproject.toml README.md LICENSE /src/
COPY quartapp /src/quartapp
COPY templates /src/templates
COPY static /src/static
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels /src

FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    QUARTAPP_ENV=production

RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home quartapp

# A normal install: the wheel carries the templates and static files inside the package,
# and the app runs from site-packages, as installed.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --no-deps -r /tmp/requirements.lock && rm /tmp/requirements.lock
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels

WORKDIR /app
USER quartapp
EXPOSE 4300
CMD ["sh", "-c", "python -m quartapp migrate && exec python -m quartapp serve --host 0.0.0.0 --port 4300"]
