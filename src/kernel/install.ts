/**
 * Installs our kernelspec ("AnnData OOM (TypeScript)", name anndata-oom)
 * with jupyter_client's KernelSpecManager of the given Python:
 *
 *   node dist/src/kernel/install.js --python VENV/bin/python [--prefix DIR | --user]
 *
 * Default target: that Python's sys.prefix (the venv). argv runs this
 * Node on the compiled launcher, so the kernel uses the same Node.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const KERNEL_NAME = "anndata-oom";
export const DISPLAY_NAME = "AnnData OOM (TypeScript)";

export function kernelJson(launcher: string, node = process.execPath): Record<string, unknown> {
  return {
    argv: [node, launcher, "--config-path", "{connection_file}"],
    display_name: DISPLAY_NAME,
    language: "typescript",
    interrupt_mode: "signal",
    env: {},
    metadata: { debugger: false },
  };
}

const INSTALL_PY = `
import sys
from jupyter_client.kernelspec import KernelSpecManager
src, name, where = sys.argv[1], sys.argv[2], sys.argv[3]
kw = {"user": True} if where == "--user" else {"prefix": sys.prefix if where == "--sys-prefix" else where}
print(KernelSpecManager().install_kernel_spec(src, name, replace=True, **kw))
`;

function parse(argv: string[]): { python: string; where: string } {
  let python = "python3";
  let where = "--sys-prefix";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--python") python = argv[++i];
    else if (a.startsWith("--python=")) python = a.slice(9);
    else if (a === "--prefix") where = path.resolve(argv[++i]);
    else if (a.startsWith("--prefix=")) where = path.resolve(a.slice(9));
    else if (a === "--user" || a === "--sys-prefix") where = a;
    else throw new Error(`unknown argument ${a}; usage: install.js --python PY [--prefix DIR | --user | --sys-prefix]`);
  }
  return { python, where };
}

/** Writes kernel.json to a temp dir and installs it; returns the installed kernelspec dir. */
export function install(python: string, where: string): string {
  const launcher = path.join(__dirname, "main.js");
  if (!fs.existsSync(launcher)) throw new Error(`${launcher} is missing: build first (npm run build:ts)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "aoom-kernelspec-"));
  try {
    fs.writeFileSync(path.join(dir, "kernel.json"), `${JSON.stringify(kernelJson(launcher), null, 2)}\n`);
    const r = spawnSync(python, ["-c", INSTALL_PY, dir, KERNEL_NAME, where], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`kernelspec install failed (${python}): ${r.error ?? r.stderr}`);
    return r.stdout.trim();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  try {
    const { python, where } = parse(process.argv.slice(2));
    console.log(`installed kernelspec '${KERNEL_NAME}' (${DISPLAY_NAME}) in ${install(python, where)}`);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  }
}
