/**
 * The engine inside a real kernel: tests/kernel/test_engine_kernel.py
 * (jupyter_client, in the reference venv) opens fixtures with
 * `import { read } from "anndata-oom"` and checks the rich execute_result,
 * the progress display of a pass, interrupting a long pass, an engine
 * error, pl.* plot bundles and the pl.explore / pl.controls widgets. One JSON line per check; each check is one test here. Needs the
 * built launcher and the native addon, and the fixtures (AOOM_FIXTURES).
 */
import * as path from "node:path";
import { FIXTURES, REPO } from "./helpers";
import { kernelSuite } from "./kernel-checks";

const CHECKS = [
  "engine_repr",
  "engine_progress",
  "engine_interrupt",
  "engine_interrupt_abandoned",
  "engine_progress_cancel",
  "engine_error",
  "engine_plot",
  "engine_widget",
  "engine_widget_lifetime",
  "engine_stuck_loop",
  "engine_sigterm",
] as const;
const TIMEOUT_MS = 240_000;

kernelSuite(
  "engine in the kernel (jupyter_client against our kernelspec)",
  path.join(REPO, "tests", "kernel", "test_engine_kernel.py"),
  [REPO, process.execPath, FIXTURES],
  CHECKS,
  TIMEOUT_MS,
);
