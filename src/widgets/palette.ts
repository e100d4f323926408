/**
 * Category colors. The first 20 are scanpy's `default_20` palette, so a
 * chip in the repr card has the color scanpy's plots give that category;
 * beyond 20 the palette repeats (scanpy switches to `default_28/102`).
 *
 * @example categoryColor(0) // "#1f77b4"
 */
export const DEFAULT_20 = [
  "#1f77b4",
  "#ff7f0e",
  "#279e68",
  "#d62728",
  "#aa40fc",
  "#8c564b",
  "#e377c2",
  "#b5bd61",
  "#17becf",
  "#aec7e8",
  "#ffbb78",
  "#98df8a",
  "#ff9896",
  "#c5b0d5",
  "#c49c94",
  "#f7b6d2",
  "#dbdb8d",
  "#9edae5",
  "#ad494a",
  "#8c6d31",
] as const;

export function categoryColor(index: number): string {
  return DEFAULT_20[((index % DEFAULT_20.length) + DEFAULT_20.length) % DEFAULT_20.length];
}
