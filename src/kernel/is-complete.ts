/**
 * is_complete for a console: tslab's answer (brackets, trailing
 * operators), corrected for literals it does not look at. A template
 * literal still open can go on in the next line (incomplete, as Python's
 * triple quotes); a quote string cannot (invalid, as ipykernel says).
 */
import { tslabTypescript } from "./tslab-typescript";

/** The last literal of `code` left open, if any. */
export function openLiteral(code: string): "template" | "string" | null {
  const ts = tslabTypescript();
  const K = ts.SyntaxKind;
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, true, ts.LanguageVariant.Standard, code);
  let open: "template" | "string" | null = null;
  for (let kind = scanner.scan(); kind !== K.EndOfFileToken; kind = scanner.scan()) {
    open = null;
    if (!scanner.isUnterminated()) continue;
    if (kind === K.NoSubstitutionTemplateLiteral || kind === K.TemplateHead || kind === K.TemplateTail) open = "template";
    else if (kind === K.StringLiteral) open = "string";
  }
  return open;
}

/**
 * True when a bracket closes one that is not open (`}` alone, `(]`): no
 * further line can make that code valid. Template literals' `${…}` are
 * followed with the scanner's re-scan, as the parser does.
 */
export function closesUnopened(code: string): boolean {
  const ts = tslabTypescript();
  const K = ts.SyntaxKind;
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, true, ts.LanguageVariant.Standard, code);
  const pairs = new Map([
    [K.CloseParenToken, K.OpenParenToken],
    [K.CloseBracketToken, K.OpenBracketToken],
    [K.CloseBraceToken, K.OpenBraceToken],
  ]);
  const open: number[] = [];
  for (let kind = scanner.scan(); kind !== K.EndOfFileToken; kind = scanner.scan()) {
    if (kind === K.OpenParenToken || kind === K.OpenBracketToken || kind === K.OpenBraceToken || kind === K.TemplateHead) {
      open.push(kind);
    } else if (kind === K.CloseBraceToken && open.at(-1) === K.TemplateHead) {
      if (scanner.reScanTemplateToken(false) === K.TemplateTail) open.pop();
    } else if (pairs.has(kind) && open.pop() !== pairs.get(kind)) {
      return true;
    }
  }
  return false;
}

export function isCompleteReply(code: string, tslab: { status: string; indent?: string }): { status: string; indent?: string } {
  if (closesUnopened(code)) return { status: "invalid" };
  if (tslab.status !== "complete") return tslab;
  const open = openLiteral(code);
  if (open === "template") return { status: "incomplete", indent: "" };
  if (open === "string") return { status: "invalid" };
  return tslab;
}
