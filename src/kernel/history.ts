/**
 * The kernel's input history, for `history_request` (JupyterLab's console
 * recalls earlier inputs with the up arrow through it). Each numbered cell
 * is kept as (session, line, input) in memory and appended to a JSON-lines
 * file, so that a new kernel (the next session) can recall what the last
 * one ran, as IPython's history database does.
 *
 * File: $ANNDATA_OOM_HISTORY, else $XDG_DATA_HOME/anndata-oom/history.jsonl
 * (~/.local/share/...). ANNDATA_OOM_HISTORY=off keeps the history in memory
 * only. A file that cannot be read or written is not an error: the history
 * then lives in memory, and the kernel says so once on its log.
 */

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { makeFolders } from "../engine/folders";

/** At most this many entries are loaded; the file is trimmed to it when twice as long. */
export const HISTORY_LIMIT = 10_000;

interface Entry {
  session: number;
  line: number;
  input: string;
}

/** One history_reply row: [session, line, input] or [session, line, [input, output]]. */
type Row = [number, number, string] | [number, number, [string, null]];

/** The history file: $ANNDATA_OOM_HISTORY ("off": none), else under XDG_DATA_HOME. */
export function historyFile(env: NodeJS.ProcessEnv = process.env): string | null {
  const set = env.ANNDATA_OOM_HISTORY;
  if (set !== undefined && set !== "") return set === "off" ? null : set;
  const data = env.XDG_DATA_HOME || path.join(os.homedir(), ".local", "share");
  return path.join(data, "anndata-oom", "history.jsonl");
}

export class History {
  /** This kernel's session number: one more than the last one in the file. */
  readonly session: number;
  private readonly entries: Entry[];
  private failed = false;

  constructor(
    private readonly file: string | null,
    private readonly log: (text: string) => void = () => {},
  ) {
    this.entries = file ? this.load(file) : [];
    this.session = this.entries.reduce((m, e) => Math.max(m, e.session), 0) + 1;
  }

  /** Keep a numbered cell's input. */
  record(line: number, input: string): void {
    const e = { session: this.session, line, input };
    this.entries.push(e);
    if (this.entries.length > 2 * HISTORY_LIMIT) this.entries.splice(0, this.entries.length - HISTORY_LIMIT);
    if (!this.file || this.failed) return;
    try {
      makeFolders(path.dirname(this.file));
      fs.appendFileSync(this.file, `${JSON.stringify(e)}\n`);
    } catch (err) {
      this.fail(`cannot write the history file ${this.file}: ${String(err)}`);
    }
  }

  /** The reply to a history_request's content. */
  reply(content: Record<string, unknown>): { status: "ok"; history: Row[] } {
    const output = content.output === true;
    const found = this.select(content);
    return {
      status: "ok",
      history: found.map((e): Row => (output ? [e.session, e.line, [e.input, null]] : [e.session, e.line, e.input])),
    };
  }

  private select(c: Record<string, unknown>): Entry[] {
    const n = typeof c.n === "number" && c.n >= 0 ? Math.floor(c.n) : null;
    switch (c.hist_access_type) {
      case "tail":
        return n === null ? [] : n === 0 ? [] : this.entries.slice(-n);
      case "range": {
        // session 0 (or absent) is this one, -1 the one before, as in IPython.
        const s = typeof c.session === "number" ? (c.session > 0 ? c.session : this.session + c.session) : this.session;
        const start = typeof c.start === "number" ? c.start : 0;
        const stop = typeof c.stop === "number" ? c.stop : Number.POSITIVE_INFINITY;
        return this.entries.filter((e) => e.session === s && e.line >= start && e.line < stop);
      }
      case "search": {
        const re = globToRegExp(typeof c.pattern === "string" ? c.pattern : "*");
        let hits = this.entries.filter((e) => re.test(e.input));
        if (c.unique === true) {
          // The latest of equal inputs, in order.
          const last = new Map(hits.map((e, i) => [e.input, i]));
          hits = hits.filter((e, i) => last.get(e.input) === i);
        }
        return n === null ? hits : n === 0 ? [] : hits.slice(-n);
      }
      default:
        return [];
    }
  }

  private load(file: string): Entry[] {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.fail(`cannot read the history file ${file}: ${String(err)}`);
      return [];
    }
    const lines = text.split("\n").filter((l) => l !== "");
    const entries: Entry[] = [];
    for (const l of lines.slice(-HISTORY_LIMIT)) {
      try {
        const e = JSON.parse(l) as Partial<Entry>;
        if (Number.isInteger(e.session) && Number.isInteger(e.line) && typeof e.input === "string") entries.push(e as Entry);
      } catch {
        // a line cut short by a killed kernel: skip it
      }
    }
    if (lines.length > 2 * HISTORY_LIMIT) {
      try {
        fs.writeFileSync(file, entries.map((e) => `${JSON.stringify(e)}\n`).join(""));
      } catch {
        // trimming is an optimisation
      }
    }
    return entries;
  }

  private fail(text: string): void {
    if (!this.failed) this.log(`anndata-oom kernel: ${text}; history is kept in memory only\n`);
    this.failed = true;
  }
}

/** IPython's history search patterns: `*` any run, `?` one character, the rest literal. */
function globToRegExp(pattern: string): RegExp {
  const body = [...pattern]
    .map((ch) => (ch === "*" ? "[\\s\\S]*" : ch === "?" ? "[\\s\\S]" : ch.replace(/[\\^$.|+()[\]{}]/g, "\\$&")))
    .join("");
  return new RegExp(`^${body}$`);
}
