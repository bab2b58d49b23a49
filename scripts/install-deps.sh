#!/usr/bin/env bash
# Install what mpc needs to build and test, only when something is missing.
# Idempotent: a second run finds everything and does nothing.
# Not root and something missing: prints the exact command and fails.
set -euo pipefail

# Build and test dependencies (the product's own).
PKGS=(libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools libpng-dev
      libjpeg-dev zlib1g-dev libcunit1-dev pkg-config make gcc)
# What the tests compare against: pandas describe(), Pillow resize, h5py
# reading our HDF5, GNU parallel's replacement strings.
# Benchmarks add their competitors with scripts/bench/install-competitors.sh.
TEST_PKGS=(python3 python3-numpy python3-pandas python3-pil python3-h5py parallel)

missing=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_hdr() { [ -e "$1" ]; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

have_cmd mpicc  || missing+=(libopenmpi-dev)
have_cmd mpirun || missing+=(openmpi-bin)
have_hdr /usr/include/hdf5/openmpi/hdf5.h || missing+=(libhdf5-openmpi-dev)
have_cmd h5dump || missing+=(hdf5-tools)
have_hdr /usr/include/png.h || missing+=(libpng-dev)
have_hdr /usr/include/jpeglib.h || missing+=(libjpeg-dev)
have_hdr /usr/include/zlib.h || missing+=(zlib1g-dev)
have_hdr /usr/include/CUnit/CUnit.h || missing+=(libcunit1-dev)
have_cmd pkg-config || missing+=(pkg-config)
have_cmd make || missing+=(make)
have_cmd gcc || missing+=(gcc)
for p in "${TEST_PKGS[@]}"; do have_pkg "$p" || missing+=("$p"); done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all dependencies present"
  exit 0
fi

echo "install-deps: missing: ${missing[*]}"
cmd="apt-get update && apt-get install -y ${PKGS[*]} ${TEST_PKGS[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: not root; run this as root, then try again:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${PKGS[@]}" "${TEST_PKGS[@]}"
echo "install-deps: done"
