/**
 * inspect_request (Shift-Tab) over tslab's handler, answered as IPython
 * answers it:
 * - a name TypeScript cannot resolve is not found (its quick info calls
 *   such a name plain `any`, which tslab passed on as found);
 * - with the cursor inside a call's parentheses (`adata.X.sum(1, |`), the
 *   function called is shown, as IPython shows its signature.
 */
import type { JupyterHandlerImpl } from "tslab/dist/jupyter";

type InspectReply = ReturnType<JupyterHandlerImpl["handleInspect"]>;

const NOT_FOUND: InspectReply = { status: "ok", found: false, data: {}, metadata: {} };

/** The reply for `code` with the cursor at `cursor` (UTF-16 units). */
export function inspectReply(handler: Pick<JupyterHandlerImpl, "handleInspect">, code: string, cursor: number): InspectReply {
  const at = (pos: number): InspectReply => {
    const r = handler.handleInspect({ code, cursor_pos: pos, detail_level: 0 });
    return r.found && r.data["text/plain"] === "any" ? NOT_FOUND : r;
  };
  const direct = at(cursor);
  if (direct.found) return direct;
  const callee = calleeAt(code, cursor);
  return callee === undefined ? direct : at(callee);
}

const IDENTIFIER = /[\p{L}\p{N}_$]/u;

/**
 * The position of the last character of the function name before the
 * innermost open `(` that encloses `cursor`, if any: brackets are matched
 * backwards, and an open `[` or `{` first means the cursor is not in a
 * call's arguments. (Brackets inside strings are not told apart: rare in
 * arguments, and the worst outcome is showing nothing.)
 */
export function calleeAt(code: string, cursor: number): number | undefined {
  let depth = 0;
  for (let i = Math.min(cursor, code.length) - 1; i >= 0; i--) {
    const ch = code[i];
    if (ch === ")" || ch === "]" || ch === "}") depth++;
    else if (ch === "(" || ch === "[" || ch === "{") {
      if (depth > 0) {
        depth--;
        continue;
      }
      if (ch !== "(") return undefined;
      let end = i - 1;
      while (end >= 0 && /\s/.test(code[end])) end--;
      return end >= 0 && IDENTIFIER.test(code[end]) ? end : undefined;
    }
  }
  return undefined;
}
