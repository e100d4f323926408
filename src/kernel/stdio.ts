/**
 * Routes the process's stdout/stderr and tslab's display API
 * (`tslab.display`, `tslab.newDisplay()`) to iopub messages of the
 * current cell. Before the first execute_request, and for the kernel's
 * own logs, the original streams (the kernel's log) are used.
 */
import * as tslabJupyter from "tslab/dist/jupyter";
import type { Iopub } from "./iopub";

const decoder = new TextDecoder();
const originalStderrWrite = process.stderr.write.bind(process.stderr);

/** The kernel's own log (the original stderr, shown by the Jupyter server's console). */
export function kernelLog(text: string): void {
  originalStderrWrite(text);
}

type Write = (chunk: string | Uint8Array, encoding?: BufferEncoding | ((err?: Error) => void), cb?: (err?: Error) => void) => boolean;

export function routeOutput(io: Iopub): void {
  for (const name of ["stdout", "stderr"] as const) {
    const stream = process[name];
    const original = stream.write.bind(stream) as Write;
    const write: Write = (chunk, encoding, cb) => {
      const done = typeof encoding === "function" ? encoding : cb;
      if (!io.parent) return original(chunk, encoding as BufferEncoding, done);
      const text = typeof chunk === "string" ? chunk : decoder.decode(chunk);
      io.stream(name, text);
      if (done) process.nextTick(done);
      return true;
    };
    stream.write = write as typeof stream.write;
  }
  // tslab.display.* and tslab.newDisplay() call this hook (it is a plain module export).
  (tslabJupyter as { lastWriteDisplayData: unknown }).lastWriteDisplayData = (
    data: { data: Record<string, unknown>; metadata: Record<string, unknown>; transient?: { display_id?: string } },
    update: boolean,
  ) => io.publish(update ? "update_display_data" : "display_data", { ...data, transient: data.transient ?? {} });
}
