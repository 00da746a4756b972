#!/usr/bin/env bash
# Creates (once) a Python venv with the Jupyter test tools under the cargo target dir:
#   jupyter_kernel_test (brings jupyter_client, jsonschema, pyzmq), nbclient, nbformat,
#   jupyter_kernel_gateway (the remote-kernel test) and ipykernel (the peer the kernel
#   round-trip bench measures against; the tests name our kernel, never `python3`).
# Prints the venv path on stdout. Fails loudly when python3 is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="${AUTOAWAIT_JUPYTER_VENV:-$target/jupyter-venv}"
python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: python3 is missing: the Jupyter kernel tests (jupyter_kernel_test, nbclient) cannot run." >&2
    echo "       install python3 with venv support (e.g. apt-get install python3 python3-venv)." >&2
    exit 2
fi
stamp="$venv/.autoawait-provisioned-v2"
# Tests run in parallel: one provisioner at a time (mkdir is atomic; a lock older
# than 15 minutes is stale).
lock="$venv.lock"
mkdir -p "$(dirname "$venv")"
for _ in $(seq 1 900); do
    if mkdir "$lock" 2>/dev/null; then break; fi
    if [ -n "$(find "$lock" -maxdepth 0 -mmin +15 2>/dev/null)" ]; then rmdir "$lock" 2>/dev/null || true; fi
    sleep 1
done
trap 'rmdir "$lock" 2>/dev/null || true' EXIT
if [ ! -f "$stamp" ]; then
    echo "provisioning $venv ..." >&2
    "$python" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "jupyter_kernel_test>=0.7,<0.8" "jupyter_client>=8,<9" "nbclient>=0.10,<0.12" nbformat \
        "jupyter_kernel_gateway>=3,<4" "ipykernel>=7,<8" >&2
    touch "$stamp"
fi
echo "$venv"
