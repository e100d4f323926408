#!/usr/bin/env bash
# Builds the napi addon into native/dist/ (generated, not committed):
# anndata-oom.linux-x64-gnu.node plus the napi-generated index.js/index.d.ts.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=env.sh
source "$root/native/env.sh"

cd "$root/native/binding"
"$root/node_modules/.bin/napi" build --release --platform \
  --package-json-path "$root/package.json" \
  --output-dir "$root/native/dist" --js index.js --dts index.d.ts
