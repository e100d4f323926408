/**
 * Option objects are checked by name at run time. A scanpy habit such as
 * `{ target_sum: 1e4 }`, or a typo, would otherwise be ignored, and the
 * step would quietly run with its default. TypeScript reports it only for
 * an object literal written in the call, not for options built elsewhere.
 */
import { InvalidArgumentError } from "./errors";

/**
 * How an option's value is checked at run time: "bool" must be a boolean
 * (a truthy string such as "no" would otherwise switch it on), "num" a
 * number (not NaN, not a numeric string); `true` is left to the step.
 */
type Check<V> = [NonNullable<V>] extends [boolean] ? "bool" : [NonNullable<V>] extends [number] ? "num" : true;

/**
 * Every option name of `T` with its check, as an object literal (exhaustive
 * and exact at compile time: a boolean option must say "bool", a number "num").
 */
export type OptionNames<T> = { readonly [K in keyof Required<T>]: Check<Required<T>[K]> };

/**
 * Throws when `opts` holds a key that is not one of `names`, suggesting the
 * camelCase name, or a value its check refuses.
 */
export function checkOptionNames<T>(fn: string, opts: unknown, names: OptionNames<T>): void {
  if (opts === undefined) return;
  // null (Python's None habit), a number or an array would fail later as a TypeError.
  if (opts === null || typeof opts !== "object" || Array.isArray(opts))
    throw new InvalidArgumentError(`${fn}: options must be an object such as {}, got ${Array.isArray(opts) ? "an array" : String(opts)}`);
  for (const [key, value] of Object.entries(opts)) {
    if (Object.hasOwn(names, key)) {
      checkValue(fn, key, value, (names as Record<string, true | "bool" | "num">)[key]);
      continue;
    }
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

/** Type checks of one option's value; null and undefined mean "the default". */
function checkValue(fn: string, key: string, value: unknown, check: true | "bool" | "num"): void {
  if (value === undefined || value === null || check === true) return;
  const shown = typeof value === "string" ? JSON.stringify(value) : String(value);
  if (check === "bool" && typeof value !== "boolean") throw new InvalidArgumentError(`${fn}: ${key} must be true or false, got ${shown}`);
  if (check === "num" && (typeof value !== "number" || Number.isNaN(value)))
    throw new InvalidArgumentError(`${fn}: ${key} must be a number, got ${shown}`);
}
