/** Folder creation that cannot hang. */

import * as fs from "node:fs";
import * as path from "node:path";

/**
 * `mkdir -p`, one level at a time. Node 20's `mkdirSync(dir, { recursive: true })`
 * loops forever where a parent exists but refuses children with ENOENT
 * (`/proc/self/x`); here that throws like any other failure.
 */
export function makeFolders(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) {
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing.reverse()) fs.mkdirSync(d);
}
