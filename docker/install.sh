#!/bin/sh
# The image's install steps, in one script the Dockerfile runs and the test suite runs too
# (tests/test_docker_install.py), so what the image does is tested on machines without Docker.
#   install.sh deps VENV SRC   create VENV and install the runtime dependencies named in SRC/setup.cfg
#                              (only setup.cfg is needed: the Dockerfile runs this before copying the source)
#   install.sh app VENV SRC    install the package from SRC into VENV, dependencies untouched
set -eu

step=${1:?usage: install.sh deps|app VENV SRC}
venv=${2:?usage: install.sh deps|app VENV SRC}
src=${3:?usage: install.sh deps|app VENV SRC}

case "$step" in
deps)
    # No pip inside the venv: the image's own pip installs into it (--python), so none ships at runtime.
    python3 -m venv --without-pip "$venv"
    # install_requires straight from setup.cfg: one list of dependencies, whatever installs them.
    "$venv/bin/python" - "$src/setup.cfg" > "$venv/requirements.txt" <<'PY'
import configparser, sys
parser = configparser.ConfigParser()
parser.read(sys.argv[1])
print("\n".join(line.strip() for line in parser["options"]["install_requires"].splitlines() if line.strip()))
PY
    python3 -m pip --python "$venv/bin/python" install --quiet --disable-pip-version-check \
        -r "$venv/requirements.txt"
    ;;
app)
    python3 -m pip --python "$venv/bin/python" install --quiet --disable-pip-version-check --no-deps "$src"
    # Fail the build here, not at start-up: the console script runs and the package data is in place.
    "$venv/bin/otpservice" --help > /dev/null
    "$venv/bin/python" -c "import importlib.resources as r; assert r.files('otpservice.storage').joinpath('lua', 'verify.lua').is_file()"
    ;;
*)
    echo "install.sh: unknown step $step (deps or app)" >&2
    exit 2
    ;;
esac
