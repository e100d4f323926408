#!/usr/bin/env python3
"""Side-by-side table of the graph steps (neighbors -> UMAP -> Leiden):
anndata-oom (bench/graph.ts JSON) against scanpy (bench/peers_graph.py JSON).
Stdlib only; tolerant of missing files, steps and fields.

    python3 bench/compare_graph.py OURS.json PEER.json [MORE.json ...]

Each JSON: {tool, version, n_obs, steps: {STEP: {wall_s, peak_rss_mb,
[status], [n_clusters], [ari], [recall], [trustworthiness], ...}}, peak_rss_mb}.
"""
import json
import os
import sys

ORDER = ["read", "neighbors", "umap", "leiden", "leiden_igraph"]
CORE = ["neighbors", "umap", "leiden"]  # the pipeline's total


def load(path):
    name = os.path.basename(path).removesuffix(".json")
    if not os.path.exists(path):
        return {"tool": f"{name} (missing)", "steps": {}, "_missing": True}
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        return {"tool": f"{name} ({type(e).__name__})", "steps": {}, "_missing": True}
    d.setdefault("steps", {})
    if isinstance(d["steps"], list):  # a list of {step: name, ...} also accepted
        d["steps"] = {s.get("step", str(i)): s for i, s in enumerate(d["steps"])}
    return d


def num(v, fmt):
    return format(v, fmt) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def wall_cell(s):
    if not s:
        return "–"
    st = s.get("status", "ok")
    w = num(s.get("wall_s"), ".2f")
    if st == "ok":
        return w or "–"
    if st == "timeout":
        return f"timeout (> {num(s.get('wall_s'), '.0f') or '?'})"
    return st


def peak_cell(s):
    return (num((s or {}).get("peak_rss_mb"), ".0f") or "–") if s else "–"


def pair(runs, step, key, fmt):
    vals = []
    for r in runs:
        v = num(r["steps"].get(step, {}).get(key), fmt)
        vals.append(v or "–")
    return " / ".join(vals) if any(v != "–" for v in vals) else ""


def main():
    paths = sys.argv[1:]
    if not paths:
        print(__doc__)
        return 2
    runs = [load(p) for p in paths]
    names = [r.get("tool", "?") for r in runs]
    n_obs = next((r.get("n_obs") for r in runs if r.get("n_obs")), None)
    title = f"{n_obs:,} cells" if isinstance(n_obs, int) else "?"
    print(f"Graph steps on {title} (obsm['X_pca'] 50 PCs); "
          + ", ".join(f"{r.get('tool', '?')} {r.get('version') or ''}".strip() for r in runs if not r.get("_missing")))
    print()
    steps = [s for s in ORDER if any(s in r["steps"] for r in runs)]
    steps += sorted({s for r in runs for s in r["steps"]} - set(ORDER))
    label = " / ".join(names)
    head = ("| step | " + " | ".join(f"{n} s | {n} peak MB" for n in names)
            + f" | n_clusters ({label}) | ARI ({label}) |")
    print(head)
    print("|" + "---|" * (1 + 2 * len(runs) + 2))
    for st in steps:
        cells = []
        for r in runs:
            s = r["steps"].get(st)
            cells += [wall_cell(s), peak_cell(s)]
        print(f"| {st} | " + " | ".join(cells) + f" | {pair(runs, st, 'n_clusters', 'd')} | "
              f"{pair(runs, st, 'ari', '.3f')} |")
    tot = []
    for r in runs:
        ss = [r["steps"].get(s) for s in CORE]
        if all(s and s.get("status", "ok") == "ok" and isinstance(s.get("wall_s"), (int, float)) for s in ss):
            tot.append(f"**{sum(s['wall_s'] for s in ss):.1f}**")
        else:
            tot.append("–")
        pk = r.get("peak_rss_mb")
        if not isinstance(pk, (int, float)):
            pks = [s.get("peak_rss_mb") for s in r["steps"].values() if isinstance(s.get("peak_rss_mb"), (int, float))]
            pk = max(pks) if pks else None
        tot.append(f"**{pk:.0f}**" if isinstance(pk, (int, float)) else "–")
    print(f"| **{' + '.join(CORE)}** | " + " | ".join(tot) + " | | |")

    # graph / embedding / clustering quality, where reported: every numeric
    # field named recall*, trustworthiness*, quality* or modularity* of a step
    # (definitions may differ between tools: see each JSON)
    prefixes = ("recall", "trustworthiness", "quality", "modularity")
    qual = []
    for st in steps:
        keys = sorted({k for r in runs for k, v in r["steps"].get(st, {}).items()
                       if k.startswith(prefixes) and not k.endswith(("_s", "_k", "_sample"))
                       and isinstance(v, (int, float)) and not isinstance(v, bool)})
        for key in keys:
            vals = []
            for r in runs:
                v = r["steps"].get(st, {}).get(key)
                vals.append(num(v, "d" if isinstance(v, int) else ".4f") or "–")
            qual.append(f"| {st} {key} | " + " | ".join(vals) + " |")
    if qual:
        print()
        print("| quality | " + " | ".join(names) + " |")
        print("|" + "---|" * (1 + len(runs)))
        print("\n".join(qual))
    notes = []
    for r in runs:
        for st, s in r["steps"].items():
            if s.get("status", "ok") != "ok":
                notes.append(f"{r.get('tool')}: {st} {s.get('status')}"
                             + (f" — {s.get('note') or s.get('error')}" if (s.get("note") or s.get("error")) else ""))
        th = r.get("threads")
        if isinstance(th, dict) and th:
            notes.append(f"{r.get('tool')}: threads {json.dumps(th, sort_keys=True)}")
        m = r.get("machine", {})
        if isinstance(m, dict) and m.get("loadavg_start"):
            notes.append(f"{r.get('tool')}: loadavg at start {m['loadavg_start']}, end {m.get('loadavg_end')}")
    if notes:
        print()
        for n in notes:
            print(f"* {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
