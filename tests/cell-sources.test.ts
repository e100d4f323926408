/**
 * Stack frames of notebook cells point at the cell's own lines
 * (src/kernel/cell-sources.ts): the token alignment against a plain LCS,
 * and frames of code compiled by tslab's converter, run as its executor
 * runs it.
 */
import * as assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import * as vm from "node:vm";
import { createConverter } from "tslab/dist/converter";
import { alignTokens, mapStackLine, setNextCell, tagCell } from "../src/kernel/cell-sources";

/** Length of a longest common subsequence, by dynamic programming. */
function lcsLength(a: number[], b: number[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    const row = [0];
    for (let j = 1; j <= b.length; j++) row.push(a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], row[j - 1]));
    prev = row;
  }
  return prev[b.length];
}

describe("alignTokens", () => {
  it("pairs equal tokens in order, as many as a longest common subsequence", () => {
    let s = 7;
    const rand = (k: number) => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s % k;
    };
    for (let trial = 0; trial < 300; trial++) {
      const a = Array.from({ length: rand(40) }, () => rand(5));
      const b = Array.from({ length: rand(40) }, () => rand(5));
      const partner = alignTokens(a, b, 1000);
      assert.ok(partner, "within the edit budget");
      let last = -1;
      let pairs = 0;
      partner.forEach((x, y) => {
        if (x < 0) return;
        assert.ok(x > last, "partners are increasing");
        assert.equal(a[x], b[y], "partners are equal tokens");
        last = x;
        pairs++;
      });
      assert.equal(pairs, lcsLength(a, b), `trial ${trial}: ${a} / ${b}`);
    }
  });

  it("gives up past the edit budget", () => {
    assert.equal(
      alignTokens(
        Array.from({ length: 50 }, () => 1),
        Array.from({ length: 50 }, () => 2),
        20,
      ),
      undefined,
    );
    assert.deepEqual(Array.from(alignTokens([], [], 0) ?? []), []);
  });
});

describe("cell frames", () => {
  const conv = createConverter({ isJS: false, isBrowser: false });
  after(() => conv.close());

  /** Compiles and runs a cell as tslab's executor does; returns its error's stack. */
  async function stackOf(count: number, src: string): Promise<string[]> {
    const out = conv.convert("", src);
    assert.deepEqual(out.diagnostics, []);
    setNextCell(count);
    const prefix = out.hasToplevelAwait ? "(async function(exports, require) { " : "(function(exports, require) { ";
    const code = `${prefix}${tagCell(src, out.output ?? "", prefix.length)}\n})({}, undefined)`;
    try {
      await vm.runInThisContext(code);
    } catch (e) {
      if (!String((e as Error).stack).includes("In[")) throw e;
      return String((e as Error).stack)
        .split("\n")
        .filter((l) => /^\s+at /.test(l))
        .map(mapStackLine)
        .filter((l) => l?.includes("In[")) as string[];
    }
    assert.fail("the cell did not throw");
  }

  it("names the cell and the line and column of the throw and the call", async () => {
    const src = [
      "interface Point { x: number; y: number }",
      "const origin: Point = { x: 0, y: 0 };",
      "function check(p: Point): number {",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: cell source with a template literal
      "  if (p.x > 3) throw new RangeError(`x ${p.x} out of range`);",
      "  return p.x;",
      "}",
      "enum Kind { A, B }",
      "check({ ...origin, x: Kind.B + 6 });",
    ].join("\n");
    const frames = await stackOf(4, src);
    assert.match(frames[0], /at check \(In\[4\]:4:22\)$/);
    assert.match(frames[1], /at In\[4\]:8:1$/);
    assert.equal(frames.length, 2, "tslab's wrapper call is hidden");
  });

  it("maps frames after an await, in templates and after regular expressions", async () => {
    const src = [
      "const re = /a\\/b/g;",
      "await new Promise((r) => setTimeout(r, 1));",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: cell source with template literals
      "const label = `n = ${re.source.length} and ${`inner ${1}`}`;",
      "const parse = (s: string): number =>",
      "  JSON.parse(s).a.b;",
      'parse(`{"a": null}`) + label.length;',
    ].join("\n");
    const frames = await stackOf(5, src);
    // V8 places a failed property read at the "." or the name.
    assert.match(frames[0], /at parse \(In\[5\]:5:1[89]\)$/);
    assert.match(frames[1], /at In\[5\]:6:1$/);
  });

  it("leaves other frames alone and says when a position could not be mapped", () => {
    assert.equal(mapStackLine("    at f (/x/y.js:3:4)"), "    at f (/x/y.js:3:4)");
    assert.equal(mapStackLine("    at f (In[999]:3:4)"), "    at f (In[999]:3:4)", "an unknown cell is left as is");
  });
});
