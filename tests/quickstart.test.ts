/**
 * examples/quickstart.ipynb, top to bottom under nbclient with our kernel:
 * tests/kernel/run_quickstart.py (reference venv) installs the kernelspec
 * into a temporary prefix, executes the notebook in examples/ (generating
 * examples/.data/quickstart_5k.h5ad when missing) and checks its outputs
 * and the file it writes. Needs the built launcher and the native addon;
 * nothing is skipped: a kernel that cannot start is a failure with the reason.
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { describe, it } from "node:test";
import { PYTHON, REPO } from "./helpers";

/** nbclient's own limits inside the script: per cell, and the whole notebook. */
const CELL_TIMEOUT_S = 300;
const RUN_TIMEOUT_S = 600;
/** Ours around the script: SIGTERM (the script shuts its kernel down), then SIGKILL. */
const SCRIPT_TIMEOUT_MS = (RUN_TIMEOUT_S + 90) * 1000;
const KILL_GRACE_MS = 15_000;

interface Result {
  ok: boolean;
  stage: string;
  detail: string;
  seconds?: { install: number; notebook: number };
  cells?: { index: number; seconds: number | null; first_line: string }[];
  n_clusters?: number;
  written?: { shape: number[]; obsm: string[]; obsp: string[]; uns: string[] };
}

function runNotebook(): Promise<{ result: Result | undefined; code: number | null; signal: string | null; log: string }> {
  return new Promise((resolve, reject) => {
    const script = path.join(REPO, "tests", "kernel", "run_quickstart.py");
    const env = {
      ...process.env,
      AOOM_QUICKSTART_CELL_TIMEOUT: String(CELL_TIMEOUT_S),
      AOOM_QUICKSTART_RUN_TIMEOUT: String(RUN_TIMEOUT_S),
    };
    const child = spawn(PYTHON, [script, REPO, process.execPath], { stdio: ["ignore", "pipe", "pipe"], env });
    let out = "";
    let log = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      log += d;
    });
    let kill: NodeJS.Timeout | undefined;
    const term = setTimeout(() => {
      log += `\n[test] no result after ${SCRIPT_TIMEOUT_MS / 1000} s: SIGTERM\n`;
      child.kill("SIGTERM");
      kill = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
    }, SCRIPT_TIMEOUT_MS);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(term);
      clearTimeout(kill);
      const last = out.trim().split("\n").pop() ?? "";
      let result: Result | undefined;
      try {
        result = JSON.parse(last) as Result;
      } catch {
        log += `\n[test] stdout was not a JSON result: ${out.slice(-2000)}`;
      }
      resolve({ result, code, signal, log });
    });
  });
}

describe("examples/quickstart.ipynb under nbclient", { timeout: SCRIPT_TIMEOUT_MS + KILL_GRACE_MS + 30_000 }, () => {
  it("runs top to bottom: no errors, > 1 clusters, a result file anndata reads with X_umap and leiden", async (t) => {
    const { result, code, signal, log } = await runNotebook();
    const tail = `\n--- script/kernel log ---\n${log.slice(-4000)}`;
    assert.ok(result, `no result from run_quickstart.py (exit ${code}, signal ${signal})${tail}`);
    assert.ok(result.ok, `failed at ${result.stage}: ${result.detail}${tail}`);
    assert.equal(code, 0, tail);
    assert.ok((result.n_clusters ?? 0) > 1, JSON.stringify(result));
    assert.ok(result.written?.obsm.includes("X_umap"), JSON.stringify(result.written));
    const cells = (result.cells ?? []).map((c) => `${c.seconds ?? "?"} s  ${c.first_line}`).join("\n  ");
    t.diagnostic(
      `quickstart: notebook ${result.seconds?.notebook} s under nbclient (kernelspec install ${result.seconds?.install} s)\n  ${cells}`,
    );
  });
});
