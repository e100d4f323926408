/**
 * Loads the napi addon built by native/build.sh. The only module that
 * knows where the binary lives.
 */
import * as path from "node:path";
import type * as Native from "../../native/dist/index";

export type { Native };

// mimalloc (the addon's allocator) commits whole arenas eagerly by default;
// committing on demand keeps peak RSS ~40 MB lower in preprocessing passes at
// no measured cost. Read by mimalloc when the addon loads; a user setting wins.
process.env.MIMALLOC_ARENA_EAGER_COMMIT ??= "0";

function load(): typeof Native {
  // dist/src/engine -> repo root is three levels up; src/engine (ts-node) is two.
  const candidates = [
    path.join(__dirname, "..", "..", "..", "native", "dist", "index.js"),
    path.join(__dirname, "..", "..", "native", "dist", "index.js"),
  ];
  let last: unknown;
  for (const c of candidates) {
    try {
      return require(c) as typeof Native;
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`anndata-oom: the native addon is not built (run \`npm run build:native\`): ${String(last)}`);
}

export const native = load();
