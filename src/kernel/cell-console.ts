/**
 * The `console` given to tslab's createExecutor. tslab uses it for three
 * things only (user code writes to the global console): `log(value)` for
 * a cell's last expression, `error(thrown)` when the cell throws, and
 * `error("%s%d:%d - %s", ...)` for each type-check diagnostic. We record
 * them so that the runner can send an execute_result or an error message.
 */
import { format } from "node:util";
import type { ConsoleInterface } from "tslab/dist/executor";
import { kernelConsole } from "./intrinsics";

const DIAGNOSTIC_FORMAT = "%s%d:%d - %s";

export class CellConsole implements ConsoleInterface {
  hasValue = false;
  value: unknown;
  thrown: { value: unknown } | undefined;
  diagnostics: string[] = [];

  reset(): void {
    this.hasValue = false;
    this.value = undefined;
    this.thrown = undefined;
    this.diagnostics = [];
  }

  log(message?: any, ...rest: any[]): void {
    if (rest.length === 0 && !this.hasValue) {
      this.hasValue = true;
      this.value = message;
    } else {
      kernelConsole.log(message, ...rest);
    }
  }

  error(message?: any, ...rest: any[]): void {
    if (message === DIAGNOSTIC_FORMAT && rest.length === 4) {
      this.diagnostics.push(format(message, ...rest));
    } else if (!this.thrown && rest.length === 0) {
      this.thrown = { value: message };
    } else {
      kernelConsole.error(message, ...rest);
    }
  }
}
