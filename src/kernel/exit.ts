/**
 * A cell's `process.exit()` would end the kernel without a reply (the
 * notebook then shows a dead kernel). As ipykernel does for `sys.exit()`,
 * cells get an error instead; the kernel itself exits through `exitKernel`.
 */

/** The real process.exit, taken before cells can call the guarded one. */
export const exitKernel: (code?: number) => never = process.exit.bind(process);

export function guardProcessExit(): void {
  process.exit = ((code?: number | string | null) => {
    throw new Error(`process.exit(${code ?? ""}) would end the kernel: use Kernel › Restart Kernel or Shut Down Kernel instead`);
  }) as typeof process.exit;
}
