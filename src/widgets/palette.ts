/**
 * Category colors as our plots (`pl.embedding`, `pl.explore`) give them
 * when `uns[key_colors]` is missing: scanpy's rules through the engine's
 * own `defaultPalette` (matplotlib's color cycle for ≤ 10 categories, else
 * `default_20` / `default_28` / `default_102`, else grey), so a chip in the
 * repr card has the color of that category in the plots.
 *
 * @example categoryColor(2, 4) // "#2ca02c" (tab10), categoryColor(2, 25) // default_28's third
 */
import { DEFAULT_20 } from "../engine/pl/colormap-data";
import { defaultPalette } from "../engine/pl/colors";

export { DEFAULT_20 };

/** The default color of category `index` of `nCategories` (the same function as the plots). */
export function categoryColor(index: number, nCategories: number): string {
  const n = Math.max(1, Math.floor(nCategories), index + 1);
  return defaultPalette(n)[index] ?? "#808080";
}
