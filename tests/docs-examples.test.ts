/**
 * The ```ts examples of README.md, docs/*.md and src/*\/README.md type-check
 * against the engine's public API ("anndata-oom" = src/engine/index.ts), so
 * that documentation cannot drift from the API. Nothing is run: only the
 * TypeScript compiler reads the sources (the addon is never loaded; like
 * tsc, the check reads the types napi generated in native/dist/index.d.ts).
 *
 * The rule: a doc is one notebook. Its blocks become ONE virtual module
 * (`<doc>.md.ts` next to the doc, never written to disk):
 *  - every import of every block is hoisted to the top, one import per name,
 *    a name imported again by a later block kept once (the first import);
 *  - each block's remaining code goes in its own `{ ... }` scope, NESTED in
 *    the previous block's scope: a block sees what earlier blocks declared
 *    (as a notebook does) and may redeclare a name (`let adata` after
 *    `const adata`), which shadows it for the blocks below;
 *  - a block may use an imported name only when its own block or an earlier
 *    one imports it (checked after type-checking, since hoisting alone would
 *    let a block use an import that only a later block has);
 *  - names a doc assumes without declaring come from PRELUDE below (per doc,
 *    one commented line each); any other undeclared name is a doc bug.
 * All docs are checked in one Program (a few seconds). Errors name the doc
 * and the line:column in the .md file.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import * as ts from "typescript";

const REPO = path.join(__dirname, "..", "..");

/** Ambient declarations per doc (repo-relative path) for names the doc uses but never declares. */
const PRELUDE: Record<string, string[]> = {
  "docs/graph.md": [
    // the AnnData of a notebook after PCA (the doc starts at the graph steps)
    `declare let adata: import("anndata-oom").AnnDataOOM;`,
  ],
  "docs/widgets.md": [
    // the notebook's AnnData, with X_umap and leiden
    `declare let adata: import("anndata-oom").AnnDataOOM;`,
    // the log-normalized AnnData that the "hvg" slider re-runs HVG → … → UMAP from
    `declare const lognorm: import("anndata-oom").AnnDataOOM;`,
  ],
};

/**
 * Code appended (per doc) inside the scope of the doc's last block. The
 * kernel README lists the `KernelApi` interfaces: they must be mutually
 * assignable with the real types of src/kernel/api.ts and comms.ts (a member
 * added, removed or retyped on either side fails; `readonly` and method
 * parameter variance are not compared).
 */
const EPILOGUE: Record<string, { imports: string[]; code: string[] }> = {
  "src/kernel/README.md": {
    imports: [`import type * as __api from "./api";`, `import type * as __comms from "./comms";`],
    code: [
      "const __apiToDoc = (x: __api.KernelApi): KernelApi => x;",
      "const __docToApi = (x: KernelApi): __api.KernelApi => x;",
      "const __commToDoc = (x: __comms.Comm): Comm => x;",
      "const __docToComm = (x: Comm): __comms.Comm => x;",
      "const __msgToDoc = (x: __comms.CommMessage): CommMessage => x;",
      "const __docToMsg = (x: CommMessage): __comms.CommMessage => x;",
    ],
  },
};

interface Block {
  /** 1-based line in the .md file of the block's first code line. */
  line: number;
  /** The fence's indentation, stripped from each line (added back to columns). */
  indent: number;
  lines: string[];
}

/** Where a line of a virtual module comes from: a line of a block, or generated code (`note`). */
interface Origin {
  block?: number;
  mdLine?: number;
  indent?: number;
  note?: string;
}

interface VirtualDoc {
  doc: string;
  file: string;
  text: string;
  origins: Origin[];
  blocks: Block[];
}

function docFiles(): string[] {
  const inDir = (dir: string, name?: string) =>
    fs.existsSync(path.join(REPO, dir))
      ? fs
          .readdirSync(path.join(REPO, dir))
          .filter((f) => (name ? f === name : f.endsWith(".md")))
          .map((f) => path.posix.join(dir, f))
      : [];
  const srcReadmes = fs
    .readdirSync(path.join(REPO, "src"))
    .filter((d) => fs.existsSync(path.join(REPO, "src", d, "README.md")))
    .map((d) => `src/${d}/README.md`);
  return ["README.md", ...inDir("docs").sort(), ...srcReadmes.sort()];
}

/** The ```ts / ```typescript blocks of a markdown file (other fenced blocks skipped whole). */
function tsBlocks(markdown: string): Block[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: Block[] = [];
  let open: { fence: string; indent: number; block?: Block } | undefined;
  lines.forEach((l, i) => {
    if (!open) {
      const m = /^( {0,3})(`{3,}|~{3,})\s*([\w-]*)/.exec(l);
      if (!m) return;
      const lang = m[3].toLowerCase();
      const block = lang === "ts" || lang === "typescript" ? { line: i + 2, indent: m[1].length, lines: [] } : undefined;
      open = { fence: m[2], indent: m[1].length, block };
      if (block) blocks.push(block);
      return;
    }
    const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(l);
    if (close && close[1][0] === open.fence[0] && close[1].length >= open.fence.length) {
      open = undefined;
      return;
    }
    open.block?.lines.push(l.slice(Math.min(open.indent, /^ */.exec(l)![0].length)));
  });
  return blocks;
}

/** Splits a block into its import declarations (one per imported name) and the rest, line by line. */
function splitImports(doc: string, block: Block): { imports: { key: string; text: string; mdLine: number }[]; body: (string | null)[] } {
  const text = block.lines.join("\n");
  const sf = ts.createSourceFile("block.ts", text, ts.ScriptTarget.ES2022, true);
  const body: (string | null)[] = [...block.lines];
  const imports: { key: string; text: string; mdLine: number }[] = [];
  const lineOf = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line;
  const importLines = new Set<number>();
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st)) continue;
    const first = lineOf(st.getStart(sf));
    const last = lineOf(st.getEnd());
    for (let l = first; l <= last; l++) importLines.add(l);
    const from = st.moduleSpecifier.getText(sf);
    const mdLine = block.line + first;
    const clause = st.importClause;
    const typeOnly = clause?.isTypeOnly ? "type " : "";
    if (!clause) imports.push({ key: `side-effect ${from}`, text: `import ${from};`, mdLine });
    if (clause?.name)
      imports.push({ key: `${clause.name.text} default ${from}`, text: `import ${typeOnly}${clause.name.text} from ${from};`, mdLine });
    const nb = clause?.namedBindings;
    if (nb && ts.isNamespaceImport(nb)) {
      imports.push({ key: `${nb.name.text} * ${from}`, text: `import ${typeOnly}* as ${nb.name.text} from ${from};`, mdLine });
    } else if (nb) {
      for (const el of nb.elements) {
        imports.push({
          key: `${el.name.text} ${(el.propertyName ?? el.name).getText(sf)} ${from}`,
          text: `import ${typeOnly}{ ${el.getText(sf)} } from ${from};`,
          mdLine: block.line + lineOf(el.getStart(sf)),
        });
      }
    }
  }
  for (const st of sf.statements) {
    if (ts.isImportDeclaration(st)) continue;
    const l = lineOf(st.getStart(sf));
    if (importLines.has(l) || importLines.has(lineOf(st.getEnd()))) {
      throw new Error(`${doc}:${block.line + l}: put an import on lines of its own (the test hoists import lines)`);
    }
  }
  importLines.forEach((l) => {
    body[l] = null;
  });
  return { imports, body };
}

function virtualDoc(doc: string, blocks: Block[]): VirtualDoc {
  const origins: Origin[] = [];
  const out: string[] = [];
  const emit = (text: string, origin: Origin) => {
    out.push(text);
    origins.push(origin);
  };
  const split = blocks.map((b) => splitImports(doc, b));
  const seen = new Set<string>();
  split.forEach((s, bi) => {
    for (const imp of s.imports) {
      if (seen.has(imp.key)) continue;
      seen.add(imp.key);
      emit(imp.text, { block: bi, mdLine: imp.mdLine, indent: blocks[bi].indent });
    }
  });
  const epilogue = EPILOGUE[doc];
  for (const l of epilogue?.imports ?? []) emit(l, { note: "the consistency check's imports" });
  emit("export {};", { note: "generated" });
  for (const l of PRELUDE[doc] ?? []) emit(l, { note: "the test's PRELUDE" });
  split.forEach((s, bi) => {
    emit(";{", { note: `the scope opened for the block at line ${blocks[bi].line}` });
    s.body.forEach((l, i) => {
      emit(l ?? "", { block: bi, mdLine: blocks[bi].line + i, indent: blocks[bi].indent });
    });
  });
  const last = blocks[blocks.length - 1].line - 1;
  for (const l of epilogue?.code ?? []) emit(l, { note: `the test's EPILOGUE, checking the block at line ${last} against the real types` });
  emit("}".repeat(blocks.length), { note: "generated" });
  return { doc, file: path.join(REPO, `${doc}.ts`), text: out.join("\n"), origins, blocks };
}

function where(v: VirtualDoc, sf: ts.SourceFile, pos: number): string {
  const { line, character } = sf.getLineAndCharacterOfPosition(pos);
  const o = v.origins[line];
  if (o?.mdLine !== undefined) return `${v.doc}:${o.mdLine}:${character + 1 + (o.indent ?? 0)}`;
  return `${v.doc} (${o?.note ?? "generated"}: ${sf.text.split("\n")[line]?.trim()})`;
}

function format(v: VirtualDoc, sf: ts.SourceFile, d: ts.Diagnostic): string {
  const msg = ts.flattenDiagnosticMessageText(d.messageText, "\n    ");
  return `${d.start === undefined ? v.doc : where(v, sf, d.start)} - error TS${d.code}: ${msg}`;
}

/** Uses of an imported name in a block before (above) the block that imports it. */
function importOrderErrors(v: VirtualDoc, sf: ts.SourceFile, checker: ts.TypeChecker): string[] {
  const errors: string[] = [];
  const blockAt = (pos: number) => v.origins[sf.getLineAndCharacterOfPosition(pos).line]?.block;
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) return;
    if (ts.isIdentifier(node)) {
      const useBlock = blockAt(node.getStart(sf));
      const decl = checker.getSymbolAtLocation(node)?.declarations?.[0];
      if (
        useBlock !== undefined &&
        decl?.getSourceFile() === sf &&
        (ts.isImportSpecifier(decl) || ts.isImportClause(decl) || ts.isNamespaceImport(decl))
      ) {
        const importBlock = blockAt(decl.getStart(sf));
        if (importBlock !== undefined && importBlock > useBlock) {
          errors.push(
            `${where(v, sf, node.getStart(sf))} - error: '${node.text}' is used before the block that imports it ` +
              `(${where(v, sf, decl.getStart(sf))}); import it in this block or an earlier one`,
          );
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return errors;
}

const COMPILER_OPTIONS: ts.CompilerOptions = {
  strict: true,
  target: ts.ScriptTarget.ES2022,
  // ES modules, for top-level await; node10 resolution like tsconfig.json (extensionless engine imports)
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  lib: ["lib.es2022.d.ts"],
  types: ["node"],
  esModuleInterop: true,
  skipLibCheck: true,
  noEmit: true,
  // display lines (`plot`, `adata.obs;`) are expression statements: no option turns them into errors; no unused-name checks
  noUnusedLocals: false,
  noUnusedParameters: false,
  allowUnreachableCode: true,
  paths: { "anndata-oom": [path.join(REPO, "src", "engine", "index.ts")] },
};

describe("documentation examples type-check against the public API", () => {
  const docs = docFiles()
    .map((doc) => ({ doc, blocks: tsBlocks(fs.readFileSync(path.join(REPO, doc), "utf8")) }))
    .filter((d) => d.blocks.length > 0);
  const virtual = new Map<string, VirtualDoc>();
  const errors = new Map<string, string[]>();
  let globalErrors: string[] = [];

  before(() => {
    for (const { doc, blocks } of docs) {
      const v = virtualDoc(doc, blocks);
      virtual.set(v.file, v);
    }
    const host = ts.createCompilerHost(COMPILER_OPTIONS);
    const { getSourceFile, fileExists, readFile } = host;
    host.getSourceFile = (file, lang, onError, create) => {
      const v = virtual.get(path.resolve(file));
      return v ? ts.createSourceFile(file, v.text, lang, true) : getSourceFile.call(host, file, lang, onError, create);
    };
    host.fileExists = (file) => virtual.has(path.resolve(file)) || fileExists.call(host, file);
    host.readFile = (file) => virtual.get(path.resolve(file))?.text ?? readFile.call(host, file);
    const program = ts.createProgram([...virtual.keys()], COMPILER_OPTIONS, host);
    const checker = program.getTypeChecker();
    globalErrors = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()].map(
      (d) => `error TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n    ")}`,
    );
    for (const v of virtual.values()) {
      const sf = program.getSourceFile(v.file)!;
      const diags = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
      const errs = diags.filter((d) => d.category === ts.DiagnosticCategory.Error).map((d) => format(v, sf, d));
      errors.set(v.doc, [...errs, ...importOrderErrors(v, sf, checker)]);
    }
  });

  it("finds the ts blocks of README.md, docs/*.md and src/*/README.md", () => {
    const count = docs.reduce((n, d) => n + d.blocks.length, 0);
    assert.ok(count >= 10, `only ${count} ts blocks found in ${docs.map((d) => d.doc).join(", ")}`);
    assert.ok(
      docs.some((d) => d.doc === "README.md"),
      "README.md has ts blocks",
    );
  });

  it("the compiler options are valid", () => {
    assert.deepEqual(globalErrors, []);
  });

  for (const { doc, blocks } of docs) {
    it(`${doc} (${blocks.length} block${blocks.length > 1 ? "s" : ""} at line${blocks.length > 1 ? "s" : ""} ${blocks.map((b) => b.line - 1).join(", ")})`, () => {
      const errs = errors.get(doc) ?? [`${doc}: not checked`];
      if (errs.length) assert.fail(`${errs.length} error(s) in the examples of ${doc}:\n  ${errs.join("\n  ")}`);
    });
  }
});
