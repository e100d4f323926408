/**
 * Top-level awaits that tslab misses. It runs a cell in an async function
 * only when TypeScript reports its "await outside an async function"
 * diagnostic, which two forms never raise:
 * - `await (…)`: TypeScript reads `await` followed by `(` outside an async
 *   function as a call of a function named `await`, and V8 then throws
 *   `ReferenceError: await is not defined` (`await (p)`,
 *   `await (async () => …)()`, `await (await read(f)).obsm.get(…)`);
 * - `for await (…)` (the README's `for await (… of adata.X.chunked())`):
 *   V8 throws `SyntaxError: Unexpected reserved word`.
 * In both the emitted JavaScript is the text the user wrote, which inside
 * an async function means what they meant, so such a cell only needs
 * tslab's async wrapper.
 */
import type * as ts from "typescript";
import { tslabTypescript } from "./tslab-typescript";

/** Whether `source` has an `await` (of any form, `await (…)` included) outside any function or class. */
export function hasTopLevelAwait(source: string): boolean {
  // Cheap test first: most cells have no "await (" (nor "for await (").
  if (!/\bawait\s*\(/.test(source)) return false;
  const t = tslabTypescript();
  const file = t.createSourceFile("cell.ts", source, t.ScriptTarget.Latest, false, t.ScriptKind.TS);
  let found = false;
  const visit = (node: ts.Node): void => {
    if (found) return;
    if (t.isFunctionLike(node) || t.isClassLike(node) || t.isModuleDeclaration(node)) return;
    // A script parses `await (` as a call; a cell with an import is a module, where this
    // parser reads an await (tslab's compiler, whose top-level await is off, still reads a call).
    const awaits =
      (t.isCallExpression(node) && t.isIdentifier(node.expression) && node.expression.text === "await") ||
      t.isAwaitExpression(node) ||
      (t.isForOfStatement(node) && node.awaitModifier !== undefined);
    if (awaits) {
      found = true;
      return;
    }
    t.forEachChild(node, visit);
  };
  visit(file);
  return found;
}
