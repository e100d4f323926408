/**
 * Runs a Python script that drives a real kernel and prints one JSON line
 * per check ({check, ok, detail}); each check becomes one node:test test.
 * Shared by the kernel and engine-in-kernel suites.
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { before, describe, it } from "node:test";
import { PYTHON } from "./helpers";

interface Result {
  check: string;
  ok: boolean;
  detail: string;
}

interface Run {
  results: Map<string, Result>;
  log: string;
}

function runChecks(script: string, args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let log = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      log += d;
    });
    // SIGTERM lets the script shut its kernel down.
    const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
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

/** A describe() with one test per check, plus "the kernel stayed alive". */
export function kernelSuite(title: string, script: string, args: string[], checks: readonly string[], timeoutMs: number): void {
  describe(title, { timeout: timeoutMs + 30_000 }, () => {
    let run: Run;
    before(async () => {
      run = await runChecks(script, args, timeoutMs);
    });

    for (const check of checks) {
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

    it("every check the script ran is one of this suite's tests", () => {
      // A check missing from `checks` would run, fail and count for nothing.
      const unlisted = [...run.results.keys()].filter((c) => c !== "kernel_alive" && !checks.includes(c));
      assert.deepEqual(unlisted, []);
    });
  });
}
