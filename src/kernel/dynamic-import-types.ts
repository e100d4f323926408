/**
 * `const fs = await import("node:fs")` in a cell: tslab exports every
 * top-level variable to carry it to later cells, and TypeScript's
 * declaration emit cannot name some types the inferred module type uses
 * (TS4023 "has or is using name 'ReadStreamOptions' … but cannot be
 * named"), so the cell never ran. Annotating the variable with
 * `typeof import("node:fs")` gives the emitter a name for the whole type,
 * and later cells see the module's full type.
 */

/** Declaration-emit diagnostics: a type TypeScript cannot name in the exported declaration. */
const UNNAMEABLE = new Set([4023, 4024, 4025]);

export interface Diagnostic {
  code: number;
  messageText: string;
}

/** The variables the diagnostics say cannot be exported, if every diagnostic is of that kind. */
export function unnameableVariables(diagnostics: readonly Diagnostic[]): string[] | undefined {
  if (diagnostics.length === 0 || !diagnostics.every((d) => UNNAMEABLE.has(d.code))) return undefined;
  const names = diagnostics.map((d) => /^Exported variable '([^']+)'/.exec(d.messageText)?.[1]);
  return names.every((n) => n !== undefined) ? [...new Set(names as string[])] : undefined;
}

/**
 * `src` with `const name = await import("m")` of each of `names` annotated
 * as `const name: typeof import("m") = …`; unchanged if none is found.
 */
export function annotateDynamicImports(src: string, names: readonly string[]): string {
  return src.replace(
    /\b(const|let|var)(\s+)([A-Za-z_$][\w$]*)(\s*)=(\s*)await(\s+)import\((\s*)("[^"\n]*"|'[^'\n]*')(\s*)\)/g,
    (whole, kw, s1, name, s2, s3, s4, s5, spec, s6) =>
      names.includes(name) ? `${kw}${s1}${name}: typeof import(${spec})${s2}=${s3}await${s4}import(${s5}${spec}${s6})` : whole,
  );
}
