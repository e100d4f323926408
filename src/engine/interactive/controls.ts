/**
 * A controls widget bound to a step: sliders for its parameters; moving one
 * re-runs the step in the kernel and updates the plot in place (new
 * colors after Leiden, new positions after UMAP or a new gene selection).
 * A newer value cancels the run still going (so dragging never queues up
 * stale work); the status line shows progress and the result.
 */
import type { AnnDataOOM } from "../anndata";
import { CancelledError, InvalidArgumentError } from "../errors";
import type { Progress } from "../pass";
import { checkOptions } from "../pl/plot";
import * as pp from "../pp";
import * as tl from "../tl";
import type { EmbeddingExplorer } from "./scatter";
import { KernelWidget, widgetKernel } from "./widget-comm";

export const CONTROLS_MIME = "application/vnd.anndata-oom.controls+json";

/** One slider. */
export interface ParamSpec {
  name: string;
  label?: string;
  min: number;
  max: number;
  step: number;
  value: number;
}

/** A re-run: gets the values and a signal, updates the data, returns a status line. */
export type RerunStep = (
  values: Record<string, number>,
  ctx: { signal: AbortSignal; onProgress: (p: Progress) => void },
) => Promise<string>;

export interface StepBinding {
  step: string;
  params: ParamSpec[];
  run: RerunStep;
}

/** Leiden resolution → obs[key] and the plot's colors. */
export function leidenBinding(plot: EmbeddingExplorer, opts: { keyAdded?: string; resolution?: number } = {}): StepBinding {
  const key = opts.keyAdded ?? (plot.color.kind === "categorical" ? plot.color.key : "leiden");
  const stored = (plot.adata.uns[key] as { params?: { resolution?: number } } | undefined)?.params?.resolution;
  return {
    step: "leiden",
    params: [{ name: "resolution", label: "Leiden resolution", min: 0.05, max: 3, step: 0.05, value: opts.resolution ?? stored ?? 1 }],
    run: async ({ resolution }, { signal, onProgress }) => {
      const r = await tl.leiden(plot.adata, { resolution, keyAdded: key, signal, onProgress });
      await plot.setColor(key, { signal });
      return `leiden (resolution ${resolution}): ${r.nClusters} cluster${r.nClusters === 1 ? "" : "s"}`;
    },
  };
}

/** UMAP minDist → obsm X_umap and the plot's positions. */
export function umapBinding(plot: EmbeddingExplorer, opts: { minDist?: number } = {}): StepBinding {
  return {
    step: "umap",
    params: [{ name: "minDist", label: "UMAP min_dist", min: 0, max: 1, step: 0.05, value: opts.minDist ?? 0.5 }],
    run: async ({ minDist }, { signal, onProgress }) => {
      await tl.umap(plot.adata, { minDist, signal, onProgress });
      await plot.refreshPositions();
      return `umap (min_dist ${minDist}): done`;
    },
  };
}

/**
 * Number of highly variable genes → HVG → scale → PCA → neighbors → UMAP
 * (→ Leiden when the plot is colored by a clustering) on `from`, the
 * log-normalized object before gene selection; the new X_umap (and
 * clusters) are copied into the plotted object.
 */
export function hvgBinding(
  plot: EmbeddingExplorer,
  from: AnnDataOOM,
  opts: { nTopGenes?: number; nComps?: number; maxValue?: number } = {},
): StepBinding {
  if (from.nObs !== plot.n) throw new InvalidArgumentError(`'from' has ${from.nObs} cells, the plot ${plot.n}: it must be the same cells`);
  const value = opts.nTopGenes ?? 2000;
  return {
    step: "hvg",
    params: [
      {
        name: "nTopGenes",
        label: "highly variable genes",
        // The slider holds the value asked for, however few genes there are.
        min: Math.min(200, value),
        max: Math.max(value, 200, Math.min(5000, from.nVars)),
        step: 100,
        value,
      },
    ],
    run: async ({ nTopGenes }, { signal, onProgress }) => {
      const o = { signal, onProgress };
      await pp.highlyVariableGenes(from, { nTopGenes, ...o });
      const hv = from.var.getChild("highly_variable")?.toArray() as boolean[];
      const a = from.subset({ var: hv });
      await pp.scale(a, { maxValue: opts.maxValue ?? 10, ...o });
      await pp.pca(a, { nComps: Math.min(opts.nComps ?? 50, a.nVars - 1), ...o });
      await pp.neighbors(a, o);
      await tl.umap(a, o);
      plot.adata.obsm.set("X_umap", await a.obsm.get("X_umap"));
      await plot.refreshPositions();
      const key = plot.color.kind === "categorical" ? plot.color.key : null;
      if (key && plot.adata.uns[key] !== undefined) {
        const r = await tl.leiden(a, { keyAdded: key, ...o });
        plot.adata.setObs(key, a.obs.getChild(key)!);
        await plot.setColor(key);
        return `${a.nVars} highly variable genes → ${r.nClusters} cluster${r.nClusters === 1 ? "" : "s"}`;
      }
      return `${a.nVars} highly variable genes: new embedding`;
    },
  };
}

/** A binding's sliders: distinct names, finite bounds with the value inside, a positive step. */
function checkBinding(b: StepBinding): void {
  if (!b || typeof b !== "object" || typeof b.run !== "function" || !Array.isArray(b.params))
    throw new InvalidArgumentError("a step binding needs { step, params: [...], run: async (values, ctx) => status }");
  const names = new Set<string>();
  for (const p of b.params) {
    if (!p || typeof p.name !== "string" || !p.name) throw new InvalidArgumentError("every param needs a name");
    if (names.has(p.name)) throw new InvalidArgumentError(`two params are named ${JSON.stringify(p.name)}`);
    names.add(p.name);
    const ok = [p.min, p.max, p.step, p.value].every((x) => typeof x === "number" && Number.isFinite(x));
    if (!ok || p.min > p.max || p.step <= 0 || p.value < p.min || p.value > p.max)
      throw new InvalidArgumentError(`param ${JSON.stringify(p.name)}: need finite min ≤ value ≤ max and step > 0`);
  }
}

export class Controls {
  readonly binding: StepBinding;
  private readonly widget: KernelWidget | null;
  private current: AbortController | null = null;
  private runs = 0;
  /** Resolves when the latest re-run has finished (for scripts and tests). */
  idle: Promise<void> = Promise.resolve();

  constructor(binding: StepBinding) {
    checkBinding(binding);
    this.binding = binding;
    const k = widgetKernel();
    this.widget = k
      ? new KernelWidget(
          k,
          { model: "ControlsModel", view: "ControlsView", writable: ["values"] },
          {
            step: binding.step,
            params: binding.params,
            values: Object.fromEntries(binding.params.map((p) => [p.name, p.value])),
            status: "",
            running: false,
            runs: 0,
          },
        )
      : null;
    this.widget?.onChange((changed) => {
      if (!changed.includes("values")) return;
      const sent = this.widget?.get("values") as Record<string, unknown>;
      try {
        // A slider release that changes nothing does not re-run the step.
        if (this.binding.params.every((p) => sent?.[p.name] === undefined || sent[p.name] === p.value)) return;
        void this.set(sent);
      } catch (e) {
        // Values the kernel refuses: the sliders go back to the current ones.
        this.widget?.set({ values: this.values, status: `not run: ${(e as Error).message}` });
      }
    });
  }

  get values(): Record<string, number> {
    return Object.fromEntries(this.binding.params.map((p) => [p.name, p.value]));
  }

  /** Sets values (as the sliders do) and re-runs the step; a run still going is cancelled. */
  set(values: Record<string, unknown>): Promise<void> {
    if (values === null || typeof values !== "object" || Array.isArray(values))
      throw new InvalidArgumentError(
        `values must be an object of ${this.binding.params.map((p) => p.name).join(", ")}, got ${JSON.stringify(values)}`,
      );
    const known = new Set(this.binding.params.map((p) => p.name));
    for (const k of Object.keys(values))
      if (!known.has(k)) throw new InvalidArgumentError(`unknown value ${JSON.stringify(k)} (the sliders are ${[...known].join(", ")})`);
    // All checked before any is taken: a refused call changes nothing.
    for (const p of this.binding.params) {
      const v = values[p.name];
      if (v === undefined) continue;
      if (typeof v !== "number" || !Number.isFinite(v) || v < p.min || v > p.max)
        throw new InvalidArgumentError(`${p.name} must be a number in [${p.min}, ${p.max}], got ${JSON.stringify(v)}`);
    }
    for (const p of this.binding.params) if (values[p.name] !== undefined) p.value = values[p.name] as number;
    this.current?.abort();
    const ctl = new AbortController();
    this.current = ctl;
    const run = ++this.runs;
    const vals = this.values;
    this.widget?.set({ values: vals, running: true, status: `${this.binding.step}: running…` });
    const onProgress = (p: Progress) => {
      if (p.state === "running" && p.chunksTotal > 0)
        this.widget?.set({ status: `${p.label}: ${Math.round((100 * p.chunksDone) / p.chunksTotal)}%` });
    };
    this.idle = this.binding.run(vals, { signal: ctl.signal, onProgress }).then(
      (status) => {
        if (run === this.runs) this.widget?.set({ status, running: false, runs: run });
      },
      (e: unknown) => {
        if (run !== this.runs) return;
        const cancelled = e instanceof CancelledError || (e as Error)?.name === "AbortError";
        this.widget?.set({ status: cancelled ? "cancelled" : `failed: ${(e as Error)?.message ?? e}`, running: false, runs: run });
      },
    );
    return this.idle;
  }

  toString(): string {
    return `Controls(${this.binding.step}: ${this.binding.params.map((p) => `${p.name}=${p.value}`).join(", ")})`;
  }

  _repr_mimebundle_(): Record<string, unknown> {
    return {
      "text/plain": this.toString(),
      ...(this.widget?.viewBundle() ?? {}),
      [CONTROLS_MIME]: { step: this.binding.step, params: this.binding.params },
    };
  }
}

/** Options of pl.controls for the built-in steps. */
export interface ControlsOptions {
  from?: AnnDataOOM;
  keyAdded?: string;
  resolution?: number;
  minDist?: number;
  nTopGenes?: number;
}

/**
 * Sliders that re-run a step and update `plot` in place.
 *
 * @example
 * pl.controls(plot, "leiden")                 // resolution → colors
 * pl.controls(plot, "umap")                   // minDist → positions
 * pl.controls(plot, "hvg", { from: lognorm }) // number of HVGs → PCA → neighbors → UMAP
 * pl.controls(plot, { step: "mine", params: [...], run: async (v, ctx) => "status" })
 */
export function controls(plot: EmbeddingExplorer, step: "leiden" | "umap" | "hvg" | StepBinding, opts: ControlsOptions = {}): Controls {
  checkOptions<ControlsOptions>("pl.controls", opts, 'pl.controls(plot, "leiden", { resolution: 1 })', {
    from: true,
    keyAdded: true,
    resolution: "num",
    minDist: "num",
    nTopGenes: "num",
  });
  if (step === null || (typeof step !== "object" && typeof step !== "string"))
    throw new InvalidArgumentError(`pl.controls: step must be "leiden", "umap", "hvg" or a binding, got ${JSON.stringify(step)}`);
  if (typeof step === "object") return new Controls(step);
  if (step === "leiden") return new Controls(leidenBinding(plot, opts));
  if (step === "umap") return new Controls(umapBinding(plot, opts));
  if (step === "hvg") {
    if (!opts.from) throw new InvalidArgumentError("controls(plot, 'hvg') needs { from }: the log-normalized object before gene selection");
    return new Controls(hvgBinding(plot, opts.from, opts));
  }
  throw new InvalidArgumentError(`unknown step ${JSON.stringify(step)}: use "leiden", "umap", "hvg" or a binding`);
}
