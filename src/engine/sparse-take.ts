/**
 * Selections of in-memory sparse elements (a view of a CSR or CSC obsm
 * matrix, of an obsp graph), kept in the element's own format. Positions may
 * repeat and come in any order, as a view's selection can.
 */
import type { SparseMatrix } from "./elements";
import type { TypedArray } from "./typed";

/** indptr / indices / data of a CSR matrix or of a CSC one (its columns are the majors). */
interface Compressed {
  indptr: Float64Array;
  indices: Int32Array;
  data: TypedArray;
}

/**
 * The majors `major` (null: all, in order) and the minors `minor` (null:
 * all) of a compressed matrix whose minor axis has `nMinor` entries. A
 * selected minor's entries take its new positions (one entry per
 * repetition), ascending within each major.
 */
function takeCompressed(m: Compressed, major: Uint32Array | null, minor: Uint32Array | null, nMinor: number): Compressed {
  const nMajor = major ? major.length : m.indptr.length - 1;
  const src = (i: number) => (major ? major[i] : i);
  // For a minor selection: where each old minor goes (CSR-like: its new
  // positions are slots[starts[j]..starts[j+1]], ascending).
  let starts: Int32Array | null = null;
  let slots: Int32Array | null = null;
  if (minor) {
    starts = new Int32Array(nMinor + 1);
    for (const j of minor) starts[j + 1]++;
    for (let j = 0; j < nMinor; j++) starts[j + 1] += starts[j];
    slots = new Int32Array(minor.length);
    const fill = starts.slice(0, nMinor);
    minor.forEach((j, q) => {
      slots![fill[j]++] = q;
    });
  }
  const fanOut = (j: number) => (starts ? starts[j + 1] - starts[j] : 1);
  // Sizes first, so the output is allocated once.
  const indptr = new Float64Array(nMajor + 1);
  for (let i = 0; i < nMajor; i++) {
    const r = src(i);
    let n = 0;
    if (starts) for (let e = m.indptr[r]; e < m.indptr[r + 1]; e++) n += fanOut(m.indices[e]);
    else n = m.indptr[r + 1] - m.indptr[r];
    indptr[i + 1] = indptr[i] + n;
  }
  const nnz = indptr[nMajor];
  const indices = new Int32Array(nnz);
  const data = new (m.data.constructor as new (n: number) => TypedArray)(nnz);
  const order: number[] = [];
  for (let i = 0; i < nMajor; i++) {
    const r = src(i);
    let out = indptr[i];
    let sorted = true;
    for (let e = m.indptr[r]; e < m.indptr[r + 1]; e++) {
      const j = m.indices[e];
      if (!starts || !slots) {
        indices[out] = j;
        data[out++] = m.data[e];
        continue;
      }
      for (let s = starts[j]; s < starts[j + 1]; s++) {
        if (out > indptr[i] && slots[s] < indices[out - 1]) sorted = false;
        indices[out] = slots[s];
        data[out++] = m.data[e];
      }
    }
    // A reordering selection leaves a major's minors out of order: sort
    // them (scipy's has_sorted_indices, which anndata's writers keep).
    if (!sorted) {
      const a = indptr[i];
      const b = indptr[i + 1];
      order.length = 0;
      for (let e = a; e < b; e++) order.push(e);
      order.sort((x, y) => indices[x] - indices[y]);
      const idx = order.map((e) => indices[e]);
      const val = order.map((e) => data[e]);
      indices.set(idx, a);
      data.set(val, a);
    }
  }
  return { indptr, indices, data };
}

/** Rows `idx` of a CSR or CSC matrix, in its format. */
export function takeSparseRows(el: SparseMatrix, idx: Uint32Array): SparseMatrix {
  const [nRows, nCols] = el.shape;
  const taken = el.kind === "csr" ? takeCompressed(el, idx, null, nCols) : takeCompressed(el, null, idx, nRows);
  return { kind: el.kind, shape: [idx.length, nCols], dtype: el.dtype, ...taken };
}

/** Rows and columns `idx` of a square CSR or CSC matrix (an obsp graph), in its format. */
export function takeSparseSquare(el: SparseMatrix, idx: Uint32Array): SparseMatrix {
  return { kind: el.kind, shape: [idx.length, idx.length], dtype: el.dtype, ...takeCompressed(el, idx, idx, el.shape[0]) };
}
