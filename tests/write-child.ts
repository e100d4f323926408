/**
 * Child process for the file-system tests: reads argv[2] and writes it to
 * argv[3], then prints one JSON line with the outcome. Run in its own
 * process (with a file-size limit) so that a crash shows up as a failed
 * test instead of killing the runner.
 */
import { read } from "../src/engine";

async function copy(src: string, dest: string): Promise<void> {
  const a = await read(src);
  try {
    await a.write(dest);
  } finally {
    a.close();
  }
}

copy(process.argv[2], process.argv[3]).then(
  () => console.log(JSON.stringify({ ok: true })),
  (e: any) => console.log(JSON.stringify({ ok: false, name: e?.name, path: e?.path ?? null, message: String(e?.message) })),
);
