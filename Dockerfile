# otpservice under gunicorn: multi-stage, slim, non-root. The install steps live in docker/install.sh,
# which the test suite also runs (tests/system/test_docker_install.py), so the image installs as tested.

# -- build: a virtualenv with the locked dependencies, then the package -------------------------------------
# An exact Python release, so a rebuild next month runs the interpreter this one was tested on.
FROM python:3.11.16-slim-bookworm AS build
# The install script first: it changes rarely, and both install layers below run it.
COPY docker/install.sh /build/docker/install.sh
# Only the service's lock, so the dependency layer stays cached until a dependency changes.
COPY requirements/service.txt /build/requirements/service.txt
# The locked dependencies (exact versions, hashes checked), into /opt/venv.
RUN sh /build/docker/install.sh deps /opt/venv /build
# What building the package reads: its metadata and its long description.
COPY setup.cfg pyproject.toml README.md /build/
# The build backend's lock, beside the service's.
COPY requirements/build.txt /build/requirements/build.txt
# Then the source: only this layer and the next rebuild when the code changes.
COPY otpservice /build/otpservice
# The package itself, dependencies untouched; the script checks the console script and the Lua files.
RUN sh /build/docker/install.sh app /opt/venv /build

# -- runtime: the virtualenv and the gunicorn config, nothing else -----------------------------------------
# The same Python release as the build stage: the virtualenv's interpreter links to it.
FROM python:3.11.16-slim-bookworm
# A system user without a home or shell: the service needs neither, and never runs as root.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin otp
# The virtualenv from the build stage: no pip cache or build files come along.
COPY --from=build /opt/venv /opt/venv
# gunicorn's settings: workers from the container's CPU limit, timeouts, JSON logs, the metrics directory.
COPY config/gunicorn.conf.py /app/config/gunicorn.conf.py
# Listen on every interface inside the container; production refuses to start without its secrets.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    OTP_ENV=production OTP_HOST=0.0.0.0 OTP_PORT=8080
# Run from /app, where the config lives.
WORKDIR /app
# As the unprivileged user from here on.
USER otp
# The port OTP_PORT names.
EXPOSE 8080
# Liveness: /healthz answers while the process runs (readiness, /readyz, is for the orchestrator to ask).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('OTP_PORT', '8080'), timeout=2)"]
# gunicorn through the service's own command, with the config copied above.
CMD ["otpservice", "serve", "--config", "/app/config/gunicorn.conf.py"]
