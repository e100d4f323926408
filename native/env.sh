# Sourced by native/build.sh and native/cargo.sh: the environment every
# cargo invocation needs, so that build scripts see the same settings
# (cargo reruns hdf5-metno-src's CMake build whenever $CMAKE changes).
cache="${ANNDATA_OOM_CACHE:-$HOME/.cache/anndata-oom}"
mkdir -p "$cache"

# HDF5 2.x (built from source by hdf5-metno-src) needs CMake >= 3.26;
# Debian 12 ships 3.25, so take CMake from PyPI when the system one is older.
cmake_ok() { "$1" --version 2>/dev/null | head -1 | awk '{split($3,v,"."); exit !(v[1]>3 || (v[1]==3 && v[2]>=26))}'; }
if [ -z "${CMAKE:-}" ]; then
  if command -v cmake >/dev/null && cmake_ok cmake; then
    export CMAKE=cmake
  else
    if [ ! -x "$cache/buildtools/bin/cmake" ]; then
      python3 -m venv "$cache/buildtools"
      "$cache/buildtools/bin/pip" install --quiet --disable-pip-version-check "cmake==3.31.6"
    fi
    export CMAKE="$cache/buildtools/bin/cmake"
  fi
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
