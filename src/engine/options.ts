/**
 * Option objects are checked by name at run time. A scanpy habit such as
 * `{ target_sum: 1e4 }`, or a typo, would otherwise be ignored, and the
 * step would quietly run with its default. TypeScript reports it only for
 * an object literal written in the call, not for options built elsewhere.
 */
import { InvalidArgumentError } from "./errors";

/** Every option name of `T`, as an object literal (exhaustive and exact at compile time). */
export type OptionNames<T> = { readonly [K in keyof Required<T>]: true };

/** Throws when `opts` holds a key that is not one of `names`, suggesting the camelCase name. */
export function checkOptionNames<T>(fn: string, opts: unknown, names: OptionNames<T>): void {
  if (opts === undefined) return;
  // null (Python's None habit), a number or an array would fail later as a TypeError.
  if (opts === null || typeof opts !== "object" || Array.isArray(opts))
    throw new InvalidArgumentError(`${fn}: options must be an object such as {}, got ${Array.isArray(opts) ? "an array" : String(opts)}`);
  for (const key of Object.keys(opts)) {
    if (Object.hasOwn(names, key)) continue;
    const known = Object.keys(names);
    const hint = closest(key, known);
    throw new InvalidArgumentError(
      `${fn}: unknown option ${JSON.stringify(key)}${hint ? ` (did you mean ${JSON.stringify(hint)}?)` : ""}; its options are ${known.join(", ")}`,
    );
  }
}

/** The known name that `key` spells in snake_case or another letter case, if any. */
function closest(key: string, known: string[]): string | undefined {
  const plain = (s: string) => s.replace(/_/g, "").toLowerCase();
  return known.find((k) => plain(k) === plain(key));
}
