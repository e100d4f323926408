/**
 * The kernel, driven over the real Jupyter protocol: tests/kernel/test_kernel.py
 * (jupyter_client, in the reference venv) starts our kernelspec in an empty
 * folder and prints one JSON line per check; each check is one test here.
 * Needs the built launcher (dist/src/kernel), not the native addon.
 */
import * as path from "node:path";
import { REPO } from "./helpers";
import { kernelSuite } from "./kernel-checks";

const CHECKS = [
  "kernel_info",
  "execute_ok",
  "mime_bundle",
  "display_update",
  "comm_roundtrip",
  "errors",
  "bad_values",
  "robust",
  "protocol_extras",
  "top_level_await",
  "flood",
  "history",
  "package",
  "interrupt",
  "interrupt_while_compiling",
  "interrupt_handled",
  "stuck_loops",
  "nbclient_notebook",
  "parent_death",
] as const;
const TIMEOUT_MS = 240_000;

kernelSuite(
  "kernel (jupyter_client against our kernelspec)",
  path.join(REPO, "tests", "kernel", "test_kernel.py"),
  [REPO, process.execPath],
  CHECKS,
  TIMEOUT_MS,
);
