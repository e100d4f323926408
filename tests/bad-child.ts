/**
 * Child process for the bad-input tests: opens a file and touches every
 * part of it, then prints one JSON line describing the outcome. Run in a
 * separate process so that a crash (or a Rust panic reaching Node) shows
 * up as a failed test instead of killing the runner.
 */
import { read } from "../src/engine";

async function touchEverything(file: string): Promise<void> {
  const a = await read(file);
  try {
    a.toString();
    await a.X.stats();
    for (const slot of ["obsm", "varm", "obsp", "varp"] as const) for (const k of a[slot].keys()) await a[slot].get(k);
    for (const k of a.layers.keys()) await a.layers.get(k).stats();
    void a.uns;
    const raw = a.raw;
    if (raw?.X) await raw.X.stats();
  } finally {
    a.close();
  }
}

touchEverything(process.argv[2]).then(
  () => console.log(JSON.stringify({ ok: true })),
  (e: any) =>
    console.log(
      JSON.stringify({ ok: false, name: e?.name, element: e?.element ?? null, path: e?.path ?? null, message: String(e?.message) }),
    ),
);
