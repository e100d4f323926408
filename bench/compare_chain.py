#!/usr/bin/env python3
"""Side-by-side table of the preprocessing chain: anndata-oom (bench/chain.ts
JSON) against the Python peers (bench/peers_chain.py JSONs). Stdlib only.

    python3 bench/compare_chain.py ENGINE.json [PEER.json ...]
"""
import json
import sys

STEPS = ["read", "qc", "filter_cells", "filter_genes", "normalize_total", "log1p", "hvg", "subset_hvg", "scale", "pca"]


def load(path):
    with open(path) as f:
        d = json.load(f)
    if d.get("engine") == "anndata-oom":
        steps = {s["step"]: (s["seconds"], s["peakRssMb"], s["passes"]) for s in d["steps"]}
        return "anndata-oom", steps, d["total_seconds"], d["peak_rss_mb"], d["total_passes"], "ok"
    steps = {s["step"]: (s["wall_s"], s.get("step_peak_rss_mb") or s.get("peak_rss_so_far_mb"), None) for s in d.get("steps", [])}
    total = sum(v[0] for v in steps.values())
    peak = max((v[1] or 0) for v in steps.values()) if steps else float("nan")
    return d.get("peer", "?"), steps, total, peak, None, d.get("status", "?")


def main():
    runs = [load(p) for p in sys.argv[1:]]
    head = "| step | " + " | ".join(f"{name} s | {name} peak MB" for name, *_ in runs) + " |"
    print(head)
    print("|" + "---|" * (1 + 2 * len(runs)))
    for st in STEPS:
        cells = []
        for _, steps, *_ in runs:
            if st in steps:
                s, mb, passes = steps[st]
                p = f" ({passes} pass{'es' if passes != 1 else ''})" if passes else ""
                cells += [f"{s:.2f}{p}", f"{mb:.0f}" if mb else "–"]
            else:
                cells += ["–", "–"]
        print(f"| {st} | " + " | ".join(cells) + " |")
    tot = []
    for name, _, total, peak, passes, status in runs:
        extra = f", {passes} passes over X" if passes is not None else ""
        tot += [f"**{total:.1f}**{extra}" + ("" if status == "ok" else f" ({status})"), f"**{peak:.0f}**"]
    print("| **whole chain** | " + " | ".join(tot) + " |")


if __name__ == "__main__":
    main()
