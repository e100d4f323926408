/**
 * The kernel launcher (the kernelspec's argv runs this file):
 *   node dist/src/kernel/main.js --config-path {connection_file}
 * Builds tslab's converter and executor (with our console), our server,
 * routes output, publishes the kernel API and starts serving.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { versions } from "tslab";
import { type Converter, createConverter } from "tslab/dist/converter";
import { type ConverterSet, createExecutor } from "tslab/dist/executor";
import { JupyterHandlerImpl } from "tslab/dist/jupyter";
import { KERNEL_IMPLEMENTATION } from "../widgets/wire-types";
import { installKernelApi } from "./api";
import { CellConsole } from "./cell-console";
import { mapStackLine, tagCell } from "./cell-sources";
import { annotateDynamicImports, unnameableVariables } from "./dynamic-import-types";
import { exitKernel, guardProcessExit } from "./exit";
import { History, historyFile } from "./history";
import { KPromise } from "./intrinsics";
import { type LoopBreaker, startLoopBreaker } from "./loop-breaker";
import { armProcessGuards, closeStdin, watchParent } from "./process-guards";
import { installRequireFallback, installTypeResolution } from "./resolve";
import { Runner } from "./runner";
import { KernelServer } from "./server";
import { kernelLog, routeOutput } from "./stdio";
import { hasTopLevelAwait } from "./top-level-await";
import { clearedCells } from "./widget-views";

/** The package root (dist/src/kernel → three levels up). */
export const PACKAGE_ROOT = path.resolve(__dirname, "..", "..", "..");

function configPathFrom(argv: string[]): string {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--config-path") return argv[i + 1] ?? "";
    if (argv[i].startsWith("--config-path=")) return argv[i].slice("--config-path=".length);
  }
  const positional = argv.find((a) => !a.startsWith("-"));
  if (!positional) throw new Error("usage: main.js --config-path CONNECTION_FILE");
  return positional;
}

function converters(): ConverterSet {
  let node: Converter | undefined;
  let browser: Converter | undefined;
  return {
    get node() {
      node ??= withCellNames(createConverter({ isJS: false, isBrowser: false }));
      return node;
    },
    get browser() {
      browser ??= createConverter({ isJS: false, isBrowser: true });
      return browser;
    },
    close() {
      node?.close();
      browser?.close();
    },
  };
}

/** tslab's text before a cell's output on the script's first line (its executor's wrapper). */
const WRAPPER = { async: "(async function(exports, require) { ".length, sync: "(function(exports, require) { ".length };

/**
 * A converter whose outputs name their cell in stack frames (see
 * cell-sources.ts), and that runs a cell with `await (…)` or `for await` at
 * top level in tslab's async wrapper (see top-level-await.ts).
 */
function withCellNames(conv: Converter): Converter {
  return {
    ...conv,
    convert(prevDecl, src) {
      let out = conv.convert(prevDecl, src);
      const unnameable = unnameableVariables(out.diagnostics);
      if (unnameable) {
        const annotated = annotateDynamicImports(src, unnameable);
        if (annotated !== src) {
          const retry = conv.convert(prevDecl, annotated);
          if (retry.diagnostics.length === 0) out = retry;
        }
      }
      if (out.output && !out.hasToplevelAwait && hasTopLevelAwait(src)) out.hasToplevelAwait = true;
      if (out.output) out.output = tagCell(src, out.output, out.hasToplevelAwait ? WRAPPER.async : WRAPPER.sync);
      return out;
    },
  };
}

export async function main(argv: string[]): Promise<void> {
  const configPath = configPathFrom(argv);
  // Tracebacks show the engine's TypeScript frames (dist has source maps).
  process.setSourceMapsEnabled(true);
  const version = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8")).version as string;
  const cwd = process.cwd();
  installTypeResolution(PACKAGE_ROOT, cwd);
  const convs = converters();
  void convs.node; // warm the type checker before the first cell
  const capture = new CellConsole();
  const executor = createExecutor(cwd, convs, capture);
  installRequireFallback(PACKAGE_ROOT);
  const history = new History(historyFile(), kernelLog);
  let loopBreaker: LoopBreaker | undefined;
  const server = new KernelServer(
    new JupyterHandlerImpl(executor, false),
    configPath,
    (s) =>
      new Runner(
        executor,
        capture,
        s.io,
        (sock, m) => s.send(sock, m),
        () => armProcessGuards(),
        history,
        (m, silent) => {
          loopBreaker?.markJob(s.runner?.runningJob ?? 0);
          s.widgetViews.cellsCleared(clearedCells(m, silent));
        },
      ),
    {
      implementation: KERNEL_IMPLEMENTATION,
      implementation_version: version,
      banner: `AnnData OOM (TypeScript) ${version}: tslab ${versions.tslab}, TypeScript ${versions.typescript}, Node ${versions.node}`,
      languageVersion: versions.typescript,
    },
    kernelLog,
    history,
  );
  armProcessGuards(
    () => server.runner?.signalInterrupt(),
    () => void (server.runner?.terminate() ?? KPromise.resolve()).finally(() => exitKernel(143)),
  );
  watchParent(kernelLog);
  closeStdin();
  await server.init();
  routeOutput(server.io);
  installKernelApi(server);
  // After routeOutput: its reports go to the stderr of the cell it interrupted.
  if (process.env.ANNDATA_OOM_LOOP_BREAKER !== "off")
    loopBreaker = startLoopBreaker(
      kernelLog,
      (report) => {
        const { terminated } = report;
        if (terminated) server.restartQueues();
        // "at fn (In[3]:12:5)" in the compiled cell → the cell's own line and column
        const text = report.text.replace(/ at (.*)$/m, (whole) => mapStackLine(whole) ?? whole);
        process.stderr.write(text);
        if (terminated) server.runner?.loopTerminated();
      },
      (job) => server.runner?.interruptJob(job),
    );
  guardProcessExit();
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    kernelLog(`anndata-oom kernel failed to start: ${e instanceof Error ? e.stack : String(e)}\n`);
    exitKernel(1);
  });
}
