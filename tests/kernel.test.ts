/**
 * The kernel, driven over the real Jupyter protocol: tests/kernel/test_kernel.py
 * (jupyter_client, in the reference venv) starts our kernelspec in an empty
 * folder and prints one JSON line per check; each check is one test here.
 * Needs the built launcher (dist/src/kernel), not the native addon.
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { PYTHON, REPO } from "./helpers";

const CHECKS = [
  "kernel_info",
  "execute_ok",
  "mime_bundle",
  "display_update",
  "comm_roundtrip",
  "errors",
  "flood",
  "history",
  "package",
  "interrupt",
  "nbclient_notebook",
] as const;
const TIMEOUT_MS = 240_000;

interface Result {
  check: string;
  ok: boolean;
  detail: string;
}

function runChecks(): Promise<{ results: Map<string, Result>; log: string }> {
  return new Promise((resolve, reject) => {
    const script = path.join(REPO, "tests", "kernel", "test_kernel.py");
    const child = spawn(PYTHON, [script, REPO, process.execPath], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let log = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      log += d;
    });
    // SIGTERM lets the script shut its kernel down.
    const timer = setTimeout(() => child.kill("SIGTERM"), TIMEOUT_MS);
    child.on("error", reject);
    child.on("close", () => {
      clearTimeout(timer);
      const results = new Map<string, Result>();
      for (const line of out.split("\n")) {
        if (!line.trim()) continue;
        const r = JSON.parse(line) as Result;
        results.set(r.check, r);
      }
      resolve({ results, log });
    });
  });
}

describe("kernel (jupyter_client against our kernelspec)", { timeout: TIMEOUT_MS + 30_000 }, () => {
  let run: { results: Map<string, Result>; log: string };
  before(async () => {
    run = await runChecks();
  });

  for (const check of CHECKS) {
    it(check, () => {
      const r = run.results.get(check);
      assert.ok(r, `${check} did not run (killed or crashed?)\n${run.log.slice(-3000)}`);
      assert.ok(r.ok, `${r.detail}\n--- kernel/test log ---\n${run.log.slice(-3000)}`);
    });
  }

  it("the kernel stayed alive", () => {
    assert.equal(run.results.get("kernel_alive"), undefined, run.log.slice(-3000));
  });
});
