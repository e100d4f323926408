/**
 * The order anndata and scanpy give string categories: pandas sorts them
 * (by code point), then `natsorted` (natsort's default key) reorders them.
 * That key splits a string into text and runs of digits, compares text by
 * code point and digit runs by value ("cluster 2" before "cluster 10"),
 * after Unicode NFD normalization as natsort does ("ü" sorts as "u" + a
 * combining mark, before "x"); strings with equal keys ("a01", "a1") keep
 * their code-point order, as natsorted is stable. Digits are ASCII 0–9 here; Python's \d also takes
 * other scripts' decimal digits, which category names rarely hold.
 */

/** Python's string order: by code point (JS's < compares UTF-16 units). */
export function codePointCompare(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0) as number);
  const y = Array.from(b, (c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** natsort's key: text at even positions (the first may be ""), numbers at odd ones. */
function naturalKey(s: string): (string | bigint)[] {
  const parts: (string | bigint)[] = s
    .normalize("NFD")
    .split(/(\d+)/)
    .map((p, i) => (i % 2 === 1 ? BigInt(p) : p));
  while (parts.length > 1 && parts.at(-1) === "") parts.pop();
  return parts;
}

/** Compare as `natsorted(sorted(strings))` orders them. */
export function natsortCompare(a: string, b: string): number {
  const ka = naturalKey(a);
  const kb = naturalKey(b);
  for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
    const [x, y] = [ka[i], kb[i]];
    if (x === y) continue;
    if (typeof x === "bigint" && typeof y === "bigint") return x < y ? -1 : 1;
    return codePointCompare(String(x), String(y));
  }
  return ka.length - kb.length || codePointCompare(a, b);
}

/** Distinct non-null strings in category order. */
export function natsortedCategories(labels: Iterable<string | null>): string[] {
  const set = new Set<string>();
  for (const l of labels) if (l !== null) set.add(l);
  return [...set].sort(natsortCompare);
}
