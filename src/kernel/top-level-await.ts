/**
 * `await (…)` at a cell's top level. TypeScript reads `await` followed by
 * `(` outside an async function as a call of a function named `await`, so
 * tslab sees no top-level await, runs the cell in a plain function, and V8
 * throws `ReferenceError: await is not defined` (for `await (p)`,
 * `await (async () => …)()`, `await (await read(f)).obsm.get(…)`). The
 * emitted JavaScript is the text the user wrote, which inside an async
 * function is the intended await, so such a cell only needs tslab's async
 * wrapper.
 */
import type * as ts from "typescript";
import { tslabTypescript } from "./tslab-typescript";

/** Whether `source` has an `await (…)` that TypeScript parsed as a call, outside any function or class. */
export function hasParenthesizedTopLevelAwait(source: string): boolean {
  // Cheap test first: most cells have no "await" followed by "(".
  if (!/\bawait\s*\(/.test(source)) return false;
  const t = tslabTypescript();
  const file = t.createSourceFile("cell.ts", source, t.ScriptTarget.Latest, false, t.ScriptKind.TS);
  let found = false;
  const visit = (node: ts.Node): void => {
    if (found) return;
    if (t.isFunctionLike(node) || t.isClassLike(node) || t.isModuleDeclaration(node)) return;
    if (t.isCallExpression(node) && t.isIdentifier(node.expression) && node.expression.text === "await") {
      found = true;
      return;
    }
    t.forEachChild(node, visit);
  };
  visit(file);
  return found;
}
