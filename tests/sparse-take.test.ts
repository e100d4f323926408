/**
 * Views of in-memory sparse elements (src/engine/sparse-take.ts): rows of a
 * CSR/CSC obsm matrix, rows and columns of an obsp graph, with repeated and
 * reordered positions, equal the same selection of the dense matrix and
 * keep their format with sorted indices.
 */
import * as assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SparseMatrix } from "../src/engine/elements";
import { seededRandom as rng } from "../src/engine/graph-data";
import { takeSparseRows, takeSparseSquare } from "../src/engine/sparse-take";

/** A random dense matrix (row-major, ~30 % filled) and the same as CSR or CSC. */
function randomSparse(rows: number, cols: number, kind: "csr" | "csc", rand: () => number): { dense: Float64Array; m: SparseMatrix } {
  const dense = new Float64Array(rows * cols);
  for (let i = 0; i < dense.length; i++) if (rand() < 0.3) dense[i] = 1 + Math.floor(rand() * 9);
  const [nMajor, nMinor] = kind === "csr" ? [rows, cols] : [cols, rows];
  const at = (major: number, minor: number) => (kind === "csr" ? dense[major * cols + minor] : dense[minor * cols + major]);
  const indptr = [0];
  const indices: number[] = [];
  const data: number[] = [];
  for (let a = 0; a < nMajor; a++) {
    for (let b = 0; b < nMinor; b++) {
      if (at(a, b) !== 0) {
        indices.push(b);
        data.push(at(a, b));
      }
    }
    indptr.push(indices.length);
  }
  const m: SparseMatrix = {
    kind,
    shape: [rows, cols],
    dtype: "float32",
    indptr: Float64Array.from(indptr),
    indices: Int32Array.from(indices),
    data: Float32Array.from(data),
  };
  return { dense, m };
}

function toDense(m: SparseMatrix): Float64Array {
  const [rows, cols] = m.shape;
  const out = new Float64Array(rows * cols);
  const nMajor = m.kind === "csr" ? rows : cols;
  for (let a = 0; a < nMajor; a++) {
    for (let e = m.indptr[a]; e < m.indptr[a + 1]; e++) {
      const b = m.indices[e];
      if (e > m.indptr[a]) assert.ok(m.indices[e - 1] < b, "indices sorted and unique within each major");
      out[m.kind === "csr" ? a * cols + b : b * cols + a] += m.data[e];
    }
  }
  return out;
}

describe("sparse-take: views of in-memory sparse elements", () => {
  const selections = [[4, 1, 1, 5, 0], [0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0, 0, 5], [2], []].map((s) => Uint32Array.from(s));

  for (const kind of ["csr", "csc"] as const) {
    it(`${kind}: rows in any order, repeated, equal the dense selection`, () => {
      const rand = rng(kind === "csr" ? 1 : 2);
      const { dense, m } = randomSparse(6, 7, kind, rand);
      for (const idx of selections) {
        const got = takeSparseRows(m, idx);
        assert.equal(got.kind, kind);
        assert.ok(got.data instanceof Float32Array, "dtype kept");
        assert.deepEqual(got.shape, [idx.length, 7]);
        const want = new Float64Array(idx.length * 7);
        idx.forEach((r, i) => want.set(dense.subarray(r * 7, (r + 1) * 7), i * 7));
        assert.deepEqual(toDense(got), want, `rows ${Array.from(idx)}`);
      }
    });

    it(`${kind}: a square graph's rows and columns equal the dense selection`, () => {
      const rand = rng(kind === "csr" ? 3 : 4);
      const { dense, m } = randomSparse(6, 6, kind, rand);
      for (const idx of selections) {
        const got = takeSparseSquare(m, idx);
        assert.equal(got.kind, kind);
        const k = idx.length;
        const want = new Float64Array(k * k);
        for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) want[a * k + b] = dense[idx[a] * 6 + idx[b]];
        assert.deepEqual(toDense(got), want, `positions ${Array.from(idx)}`);
      }
    });
  }
});
