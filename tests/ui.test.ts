/**
 * The galata (Playwright) tests of the JupyterLab extension, in a real
 * JupyterLab with our kernel and Debian Chromium: `bash ui-tests/run.sh`
 * (see ui-tests/README.md). Each Playwright test becomes a node subtest
 * here, so the one summary of `npm test` counts them; the spec files that
 * must have run are listed, so a missing or skipped spec fails too.
 * Screenshots land in ui-tests/.jupyter/test-results/.
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { it } from "node:test";
import { PYTHON, REPO } from "./helpers";

const SPECS = ["million.spec.ts", "plots.spec.ts", "progress.spec.ts", "quickstart.spec.ts", "repr-card.spec.ts", "scatter.spec.ts"];
const TIMEOUT_MS = 20 * 60_000;

interface PwResult {
  status: string;
  error?: { message?: string };
  annotations?: { type: string; description?: string }[];
}
interface PwSpec {
  title: string;
  file: string;
  tests: { results: PwResult[]; annotations?: { type: string; description?: string }[] }[];
}
interface PwSuite {
  specs?: PwSpec[];
  suites?: PwSuite[];
}

function specsOf(s: PwSuite): PwSpec[] {
  return [...(s.specs ?? []), ...(s.suites ?? []).flatMap(specsOf)];
}

function runUi(): Promise<{ code: number | null; log: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [path.join(REPO, "ui-tests", "run.sh")], {
      env: { ...process.env, AOOM_PYTHON: PYTHON },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let log = "";
    child.stdout.on("data", (d) => {
      log += d;
    });
    child.stderr.on("data", (d) => {
      log += d;
    });
    const timer = setTimeout(() => child.kill("SIGTERM"), TIMEOUT_MS);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, log });
    });
  });
}

it("JupyterLab extension in Chromium (galata: ui-tests/)", { timeout: TIMEOUT_MS + 60_000 }, async (t) => {
  const results = path.join(REPO, "ui-tests", ".jupyter", "results.json");
  fs.rmSync(results, { force: true });
  const { code, log } = await runUi();
  assert.ok(fs.existsSync(results), `ui-tests/run.sh wrote no results (exit ${code}):\n${log.slice(-4000)}`);
  const report = JSON.parse(fs.readFileSync(results, "utf8")) as { suites: PwSuite[] };
  const specs = report.suites.flatMap(specsOf);
  for (const spec of specs) {
    await t.test(`${spec.file} › ${spec.title}`, (st) => {
      const res = spec.tests.flatMap((x) => x.results);
      const last = res.at(-1);
      assert.ok(last, "did not run");
      for (const a of spec.tests.flatMap((x) => x.annotations ?? [])) if (a.description) st.diagnostic(`${a.type}: ${a.description}`);
      assert.equal(last.status, "passed", last.error?.message ?? "");
    });
  }
  const files = new Set(specs.map((s) => path.basename(s.file)));
  assert.deepEqual(
    SPECS.filter((f) => !files.has(f)),
    [],
    "spec files that did not run",
  );
  assert.equal(code, 0, log.slice(-4000));
});
