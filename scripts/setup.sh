#!/usr/bin/env bash
# Installs NASLab's system dependencies. On Debian/Ubuntu it uses apt-get (as root, or via sudo);
# elsewhere it says what is missing and stops.
set -euo pipefail

APT_PACKAGES=(libopenblas-dev libhdf5-dev hdf5-tools pkg-config zlib1g-dev dataset-fashion-mnist fortunes python3 python3-pip python3-venv)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
else
    # Not Debian: check for the pieces themselves.
    command -v pkg-config >/dev/null || missing+=("pkg-config")
    pkg-config --exists openblas 2>/dev/null || missing+=("OpenBLAS (pkg-config 'openblas')")
    pkg-config --exists hdf5-serial 2>/dev/null || pkg-config --exists hdf5 2>/dev/null || missing+=("HDF5 (pkg-config 'hdf5-serial')")
    command -v h5dump >/dev/null || missing+=("h5dump (HDF5 tools)")
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
else
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "setup: install OpenBLAS, HDF5 (serial, with its high-level library and tools), zlib and pkg-config with your package manager, then run again." >&2
    exit 1
fi
