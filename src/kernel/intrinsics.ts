/**
 * The built-ins the kernel's own code uses, taken when the kernel starts.
 *
 * Cells run in the kernel's global scope, so a cell that replaces
 * `Promise` (a polyfill), `JSON.stringify`, `Buffer`, the timers or
 * `console` — or deletes them by mistake — used to break the wire and the
 * runner: no more replies until a restart. Kernel modules use these copies
 * (and import `Buffer` and the timers from their node: modules) instead of
 * the globals.
 */
import { Console } from "node:console";

export const KPromise: PromiseConstructor = globalThis.Promise;

export const jsonStringify: typeof JSON.stringify = JSON.stringify.bind(JSON);
export const jsonParse: typeof JSON.parse = JSON.parse.bind(JSON);

/**
 * A console over the process's streams (which stdio.ts routes to the
 * cell's output), for what the kernel itself prints: a deleted or
 * replaced global `console` must not stop values from being shown.
 */
export const kernelConsole = new Console({ stdout: process.stdout, stderr: process.stderr });
