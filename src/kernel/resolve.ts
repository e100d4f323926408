/**
 * Makes `import ... from "anndata-oom"` (and "apache-arrow", the type of
 * obs / var columns) work in cells whatever the
 * notebook's folder is. The kernel runs in the notebook's folder and tslab
 * resolves types and modules from there; when that folder has no local
 * install of a package we provide, the type checker sees ours as if it
 * were in `<cwd>/node_modules/<name>` (like tslab does for itself) and the
 * cell's `require` falls back to ours. A local install always wins.
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { tslabTypescript } from "./tslab-typescript";

/** Packages cells get from the kernel when the notebook's folder does not have them. */
export const PROVIDED = ["anndata-oom", "apache-arrow", "@types/node"] as const;

/** Provided packages with code (a cell's `require` falls back to ours); the rest are types only. */
const PROVIDED_RUNTIME = ["anndata-oom", "apache-arrow"];

interface TsSys {
  fileExists(p: string): boolean;
  directoryExists(p: string): boolean;
  readFile(p: string, encoding?: string): string | undefined;
  getDirectories(p: string): string[];
  realpath?(p: string): string;
}

const slash = (p: string) => p.replace(/\\/g, "/");

/** Where a provided package lives: ours for anndata-oom, else found from our root upwards. */
function providedDir(root: string, name: string): string | undefined {
  if (name === "anndata-oom") return root;
  for (let dir = root; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, path.basename(dir) === "node_modules" ? "" : "node_modules", name);
    if (fs.existsSync(path.join(candidate, "package.json"))) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** True when `<dir or an ancestor>/node_modules/<name>` exists (what Node and tsc find on their own). */
function resolvableFrom(dir: string, name: string): boolean {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, "node_modules", name))) return true;
    if (path.dirname(d) === d) return false;
  }
}

/** Maps `<cwd>/node_modules/<provided>/...` to our copy when the notebook's folder has none. */
export function makeForward(root: string, cwd: string): (p: string) => string {
  const prefix = `${slash(path.join(cwd, "node_modules"))}/`;
  const targets = new Map<string, string>();
  for (const name of PROVIDED) {
    const dir = resolvableFrom(cwd, name) ? undefined : providedDir(root, name);
    if (dir) targets.set(name, slash(dir));
  }
  return (p) => {
    const s = slash(p);
    if (!s.startsWith(prefix)) return p;
    const rest = s.slice(prefix.length);
    for (const [name, dir] of targets) {
      if (rest === name || rest.startsWith(`${name}/`)) return dir + rest.slice(name.length);
    }
    return p;
  };
}

/** Patches the TypeScript `sys` that tslab's converter reads through (call before creating converters). */
export function installTypeResolution(root: string, cwd: string): void {
  const sys = tslabTypescript().sys as unknown as TsSys;
  const fwd = makeForward(root, cwd);
  const typesDir = `${slash(path.join(cwd, "node_modules"))}/@types`;
  const { fileExists, directoryExists, readFile, getDirectories } = sys;
  const realpath = sys.realpath;
  sys.fileExists = (p) => fileExists.call(sys, fwd(p));
  sys.readFile = (p, enc) => readFile.call(sys, fwd(p), enc);
  sys.directoryExists = (p) =>
    directoryExists.call(sys, fwd(p)) || (slash(p) === typesDir && fwd(`${typesDir}/node`) !== `${typesDir}/node`);
  sys.getDirectories = (p) => {
    // The provided @types/node shows up in <cwd>/node_modules/@types next to any local ones.
    const own = directoryExists.call(sys, p) ? getDirectories.call(sys, p) : [];
    if (slash(p) === typesDir && !own.includes("node") && fwd(`${typesDir}/node`) !== `${typesDir}/node`) own.push("node");
    return own;
  };
  // Resolved files take their real location, so their own imports resolve from our install.
  if (realpath) sys.realpath = (p) => realpath.call(sys, fwd(p));
}

/** Lets cells `require("anndata-oom")` (and subpaths) fall back to ours (call after createExecutor). */
export function installRequireFallback(root: string): void {
  const g = globalThis as { __tslab__?: { require: NodeJS.Require } };
  const cellRequire = g.__tslab__?.require;
  if (!g.__tslab__ || !cellRequire) throw new Error("tslab's __tslab__.require is missing");
  const ours = createRequire(path.join(root, "package.json"));
  g.__tslab__.require = new Proxy(cellRequire, {
    apply(target, thisArg, args: unknown[]) {
      try {
        return Reflect.apply(target, thisArg, args);
      } catch (e) {
        const id = args[0];
        const missing = (e as { code?: string }).code === "MODULE_NOT_FOUND";
        const name = typeof id === "string" ? PROVIDED_RUNTIME.find((n) => id === n || id.startsWith(`${n}/`)) : undefined;
        if (!missing || !name) throw e;
        if (name === "anndata-oom") return ours(id === name ? root : path.join(root, (id as string).slice(name.length + 1)));
        // Arrow (the type of obs / var columns) from anndata-oom's own install.
        return ours(id as string);
      }
    },
  });
}
