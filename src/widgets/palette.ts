/**
 * Category colors. The first 20 are scanpy's `default_20` palette, so a
 * chip in the repr card has the color scanpy's plots give that category;
 * beyond 20 the palette repeats (scanpy switches to `default_28/102`).
 *
 * @example categoryColor(0) // "#1f77b4"
 */
import { DEFAULT_20 } from "../engine/pl/colormap-data";

export { DEFAULT_20 };

export function categoryColor(index: number): string {
  return DEFAULT_20[((index % DEFAULT_20.length) + DEFAULT_20.length) % DEFAULT_20.length];
}
