/**
 * Stack frames of cell code, mapped back to the lines of the cell.
 *
 * tslab compiles a cell in two steps (TypeScript → ES module → CommonJS),
 * which drops types, re-indents and splits statements and adds export
 * bookkeeping, and it keeps no source map, so the frames of a cell pointed
 * into code the user never saw (`evalmachine.<anonymous>:11:22` for line 7).
 * Each compiled cell is now tagged with a `//# sourceURL=In[N]`, so V8 names
 * the cell in its frames, and a frame's position is carried back to the
 * cell by aligning the tokens of the cell with the tokens of its output
 * (Myers' diff): the token at the frame maps to its partner in the cell, or
 * to the partner of the nearest matched token before it. The alignment is
 * computed only when a frame of that cell is shown.
 */
import { type TsApi, tslabTypescript } from "./tslab-typescript";

interface Cell {
  source: string;
  output: string;
  /** Characters before output's first line in the script V8 ran (tslab's wrapper). */
  firstLineOffset: number;
  map?: PositionMap | null;
}

/** Cells kept for mapping: functions of old cells can still throw. */
const MAX_CELLS = 1000;
/** Past this many inserted or deleted tokens the alignment is given up (memory grows with its square). */
const MAX_EDITS = 2000;

const cells = new Map<string, Cell>();
let nextLabel: string | undefined;
let unnamed = 0;

/** Names the cell about to be compiled: `In[count]`, or one that says it is not in the history. */
export function setNextCell(executionCount: number | undefined): void {
  nextLabel = executionCount === undefined ? `In[~${++unnamed}]` : `In[${executionCount}]`;
}

/**
 * Tags tslab's output for `source` with a sourceURL naming the cell and
 * remembers both for mapping frames. `firstLineOffset` is the length of the
 * text tslab puts before the output on its first line.
 */
export function tagCell(source: string, output: string, firstLineOffset: number): string {
  const label = nextLabel ?? `In[~${++unnamed}]`;
  nextLabel = undefined;
  cells.delete(label);
  cells.set(label, { source, output, firstLineOffset });
  if (cells.size > MAX_CELLS) cells.delete(cells.keys().next().value as string);
  return `${output}\n//# sourceURL=${label}`;
}

const FRAME_POSITION = /(In\[~?\d+\]):(\d+):(\d+)/;

/**
 * A stack line with a cell's compiled position replaced by the cell's line
 * and column; undefined for the frame of tslab's wrapper around the cell.
 */
export function mapStackLine(line: string): string | undefined {
  const m = FRAME_POSITION.exec(line);
  if (!m) return line;
  const cell = cells.get(m[1]);
  if (!cell) return line;
  // tslab's call of the cell's wrapper function, after the cell's own lines.
  if (Number(m[2]) > lineStarts(cell.output).length) return undefined;
  const at = mapPosition(cell, Number(m[2]), Number(m[3]));
  const where = at ? `${m[1]}:${at.line}:${at.column}` : `${m[1]} (compiled):${m[2]}:${m[3]}`;
  return line.slice(0, m.index) + where + line.slice(m.index + m[0].length);
}

/** 1-based line and column in the cell for a 1-based position in the script V8 ran. */
function mapPosition(cell: Cell, line: number, column: number): { line: number; column: number } | undefined {
  if (cell.map === undefined) {
    try {
      cell.map = PositionMap.build(cell.source, cell.output);
    } catch {
      cell.map = null;
    }
  }
  if (!cell.map) return undefined;
  const col = line === 1 ? column - 1 - cell.firstLineOffset : column - 1;
  return cell.map.toSource(line - 1, Math.max(0, col));
}

interface Tokens {
  /** Token texts, interned as integers so the diff compares numbers. */
  ids: Int32Array;
  starts: Int32Array;
}

class PositionMap {
  private constructor(
    private readonly sourceStarts: Int32Array,
    private readonly sourceLines: number[],
    private readonly outputStarts: Int32Array,
    private readonly outputLines: number[],
    /** For each output token, its partner in the source or −1. */
    private readonly partner: Int32Array,
  ) {}

  static build(source: string, output: string): PositionMap | null {
    const ts = tslabTypescript();
    const intern = new Map<string, number>();
    const a = tokenize(ts, source, intern);
    const b = tokenize(ts, output, intern);
    const partner = alignTokens(a.ids, b.ids, MAX_EDITS);
    if (!partner) return null;
    return new PositionMap(a.starts, lineStarts(source), b.starts, lineStarts(output), partner);
  }

  toSource(line: number, column: number): { line: number; column: number } | undefined {
    if (line >= this.outputLines.length) return undefined;
    const offset = this.outputLines[line] + column;
    // The token at the offset, or the last one starting before it.
    let t = upperBound(this.outputStarts, offset) - 1;
    while (t >= 0 && this.partner[t] < 0) t--;
    if (t < 0) return undefined;
    const pos = this.sourceStarts[this.partner[t]];
    const l = upperBound(this.sourceLines, pos) - 1;
    return { line: l + 1, column: pos - this.sourceLines[l] + 1 };
  }
}

/**
 * The tokens of `text`, scanned without a parser: template literals are
 * followed through their `${…}` parts, and a `/` that cannot end an
 * expression starts a regular expression. Both texts go through the same
 * scanner, so any leftover misreading is the same on both sides.
 */
function tokenize(ts: TsApi, text: string, intern: Map<string, number>): Tokens {
  const K = ts.SyntaxKind;
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, true, ts.LanguageVariant.Standard, text);
  const ids: number[] = [];
  const starts: number[] = [];
  const braces: boolean[] = []; // true: the `{` of a template's `${`
  let prev = K.Unknown;
  for (let kind = scanner.scan(); kind !== K.EndOfFileToken; kind = scanner.scan()) {
    if (kind === K.TemplateHead) braces.push(true);
    else if (kind === K.OpenBraceToken) braces.push(false);
    else if (kind === K.CloseBraceToken && braces.pop()) kind = scanner.reScanTemplateToken(false);
    else if ((kind === K.SlashToken || kind === K.SlashEqualsToken) && !endsExpression(ts, prev)) kind = scanner.reScanSlashToken();
    if (kind === K.TemplateMiddle) braces.push(true);
    const value = scanner.getTokenText();
    let id = intern.get(value);
    if (id === undefined) {
      id = intern.size;
      intern.set(value, id);
    }
    ids.push(id);
    starts.push(scanner.getTokenPos());
    prev = kind;
  }
  return { ids: Int32Array.from(ids), starts: Int32Array.from(starts) };
}

function endsExpression(ts: TsApi, kind: number): boolean {
  const K = ts.SyntaxKind;
  return (
    kind === K.Identifier ||
    kind === K.NumericLiteral ||
    kind === K.StringLiteral ||
    kind === K.BigIntLiteral ||
    kind === K.CloseParenToken ||
    kind === K.CloseBracketToken ||
    kind === K.CloseBraceToken ||
    kind === K.TemplateTail ||
    kind === K.NoSubstitutionTemplateLiteral ||
    kind === K.ThisKeyword ||
    kind === K.PlusPlusToken ||
    kind === K.MinusMinusToken
  );
}

/**
 * Myers' O((N+M)·D) diff of two token sequences: for each token of `b`,
 * the index of its partner in `a` in a longest common subsequence, or −1.
 * Undefined when more than `maxEdits` insertions and deletions are needed.
 */
export function alignTokens(a: ArrayLike<number>, b: ArrayLike<number>, maxEdits: number): Int32Array | undefined {
  const n = a.length;
  const m = b.length;
  const max = Math.min(n + m, maxEdits);
  const v = new Int32Array(2 * max + 3);
  const off = max + 1;
  // trace[d][k + d] = v[k] after round d, for k in −d..d.
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= max && found < 0; d++) {
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) found = d;
    }
    trace.push(v.slice(off - d, off + d + 1));
  }
  if (found < 0) return undefined;
  const partner = new Int32Array(m).fill(-1);
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    const prev = trace[d - 1];
    const k = x - y;
    const at = (kk: number) => prev[kk + d - 1];
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    // The snake of round d: matches back to the edit that started it.
    const startX = prevK === k + 1 ? prevX : prevX + 1;
    while (x > startX && y > startX - k) {
      x--;
      y--;
      partner[y] = x;
    }
    x = prevX;
    y = prevY;
  }
  while (x > 0 && y > 0) {
    x--;
    y--;
    partner[y] = x;
  }
  return partner;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
}

/** Index of the first element greater than `x` in an ascending array. */
function upperBound(arr: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
