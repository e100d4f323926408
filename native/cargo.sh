#!/usr/bin/env bash
# cargo with the project's build environment (see env.sh), run in native/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"
cd "$here"
exec cargo "$@"
