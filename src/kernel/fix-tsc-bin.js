#!/usr/bin/env node
// `prepare` script (runs after a local `npm install`, not in consumers'
// installs): tslab's bundled TypeScript (5.0.4) also declares the `tsc`
// and `tsserver` bins, and npm links them over the project's TypeScript in
// node_modules/.bin, so `npx tsc` would build the repo with the wrong
// compiler. Point the links back at the project's own `typescript`.
const fs = require("node:fs");
const path = require("node:path");

const bin = path.join(__dirname, "..", "..", "node_modules", ".bin");
for (const name of ["tsc", "tsserver"]) {
  const target = path.join("..", "typescript", "bin", name);
  const link = path.join(bin, name);
  if (!fs.existsSync(path.join(bin, target))) continue;
  try {
    if (fs.readlinkSync(link) === target) continue;
  } catch {
    /* missing or not a link: replace it */
  }
  fs.rmSync(link, { force: true });
  fs.symlinkSync(target, link);
}
