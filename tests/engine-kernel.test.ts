/**
 * The engine inside a real kernel: tests/kernel/test_engine_kernel.py
 * (jupyter_client, in the reference venv) opens fixtures with
 * `import { read } from "anndata-oom"` and checks the rich execute_result,
 * the progress display of a pass, interrupting a long pass and an engine
 * error. One JSON line per check; each check is one test here. Needs the
 * built launcher and the native addon, and the fixtures (AOOM_FIXTURES).
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { FIXTURES, PYTHON, REPO } from "./helpers";

const CHECKS = ["engine_repr", "engine_progress", "engine_interrupt", "engine_error"] as const;
const TIMEOUT_MS = 240_000;

interface Result {
  check: string;
  ok: boolean;
  detail: string;
}

function runChecks(): Promise<{ results: Map<string, Result>; log: string }> {
  return new Promise((resolve, reject) => {
    const script = path.join(REPO, "tests", "kernel", "test_engine_kernel.py");
    const child = spawn(PYTHON, [script, REPO, process.execPath, FIXTURES], { stdio: ["ignore", "pipe", "pipe"] });
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

describe("engine in the kernel (jupyter_client against our kernelspec)", { timeout: TIMEOUT_MS + 30_000 }, () => {
  let run: { results: Map<string, Result>; log: string };
  before(async () => {
    run = await runChecks();
  });

  for (const check of CHECKS) {
    it(check, (t) => {
      const r = run.results.get(check);
      assert.ok(r, `${check} did not run (killed or crashed?)\n${run.log.slice(-3000)}`);
      assert.ok(r.ok, `${r.detail}\n--- kernel/test log ---\n${run.log.slice(-3000)}`);
      if (r.detail) t.diagnostic(r.detail);
    });
  }

  it("the kernel stayed alive", () => {
    assert.equal(run.results.get("kernel_alive"), undefined, run.log.slice(-3000));
  });
});
