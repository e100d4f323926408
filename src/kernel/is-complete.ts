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

export function isCompleteReply(code: string, tslab: { status: string; indent?: string }): { status: string; indent?: string } {
  if (tslab.status !== "complete") return tslab;
  const open = openLiteral(code);
  if (open === "template") return { status: "incomplete", indent: "" };
  if (open === "string") return { status: "invalid" };
  return tslab;
}
