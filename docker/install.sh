#!/bin/sh
# The image's install steps, in one script the Dockerfile runs and the test suite runs too
# (tests/system/test_docker_install.py), so what the image does is tested on machines without Docker.
#   install.sh deps VENV SRC   create VENV and install SRC/requirements/service.txt (exact versions, hashes
#                              checked); only that file is needed: the Dockerfile runs this before the source
#   install.sh app VENV SRC    build the package of SRC into a wheel (setuptools from SRC/requirements/build.txt)
#                              and install it into VENV, dependencies untouched
set -eu

step=${1:?usage: install.sh deps|app VENV SRC}
venv=${2:?usage: install.sh deps|app VENV SRC}
src=${3:?usage: install.sh deps|app VENV SRC}
pip="python3 -m pip --disable-pip-version-check"

case "$step" in
deps)
    # No pip inside the venv: the image's own pip installs into it (--python), so none ships at runtime.
    python3 -m venv --without-pip "$venv"
    # --require-hashes: a file that is not the one locked (or a package the lock does not list) fails the build.
    $pip --python "$venv/bin/python" install --quiet --require-hashes -r "$src/requirements/service.txt"
    ;;
app)
    # The build backend lives in a throwaway venv of its own, from its lock: none of it reaches the image.
    work=$(mktemp -d)
    python3 -m venv --without-pip "$work/build"
    $pip --python "$work/build/bin/python" install --quiet --require-hashes -r "$src/requirements/build.txt"
    $pip --python "$work/build/bin/python" wheel --quiet --no-deps --no-build-isolation -w "$work/wheels" "$src"
    $pip --python "$venv/bin/python" install --quiet --no-deps "$work"/wheels/otpservice-*.whl
    rm -rf "$work"
    # Fail the build here, not at start-up: the console script runs and the package data is in place.
    "$venv/bin/otpservice" --help > /dev/null
    "$venv/bin/python" -c "import importlib.resources as r; assert r.files('otpservice.storage').joinpath('lua', 'verify.lua').is_file()"
    ;;
*)
    echo "install.sh: unknown step $step (deps or app)" >&2
    exit 2
    ;;
esac
