"""Randomized bad-input campaign (not part of `npm test`): copies of fixture
files with random bytes overwritten are opened and touched everywhere by
`dist/tests/bad-child.js` (the bad-input tests' child: repr, X and layer
passes, obsm/varm/obsp/varp, uns, raw) in a child process each, and every
outcome is classified: ok, a typed error (its class), a crash (the child
died or printed no JSON line) or a hang (no answer within --timeout).
Crashing and hanging inputs are kept in --keep for a look.

Two thirds of the overwritten bytes fall in a file's first 64 KiB, where
anndata's small files keep their HDF5 metadata.

    npm run build
    python tests/python/fuzz_open.py tests/.fixtures full_csr.h5ad,csr_gzip.h5ad --cases 200 --seed 1
"""

import argparse
import collections
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHILD = os.path.join(ROOT, "dist", "tests", "bad-child.js")


def mutate(data: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 16)):
        span = min(len(data), 1 << 16) if rng.random() < 2 / 3 else len(data)
        data[rng.randrange(span)] = rng.randrange(256)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fixtures", help="folder of .h5ad files (tests/.fixtures after npm test)")
    ap.add_argument("files", help="comma-separated file names in that folder")
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds before a case counts as a hang")
    ap.add_argument("--keep", default=os.path.join(tempfile.gettempdir(), "aoom-fuzz"), help="where crashing / hanging inputs are copied")
    args = ap.parse_args()
    if not os.path.exists(CHILD):
        sys.exit(f"{CHILD} is missing: run npm run build first")
    rng = random.Random(args.seed)
    sources = [os.path.join(args.fixtures, f) for f in args.files.split(",")]
    outcomes = collections.Counter()
    kept = []
    os.makedirs(args.keep, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        case = os.path.join(tmp, "case.h5ad")
        for i in range(args.cases):
            src = rng.choice(sources)
            data = bytearray(open(src, "rb").read())
            mutate(data, rng)
            with open(case, "wb") as f:
                f.write(data)
            try:
                r = subprocess.run(["node", CHILD, case], capture_output=True, text=True, timeout=args.timeout)
                lines = r.stdout.strip().splitlines()
                try:
                    j = json.loads(lines[-1])
                    kind = "ok" if j["ok"] else f"typed error {j['name']}"
                except (IndexError, ValueError, KeyError):
                    kind = f"CRASH (exit {r.returncode})"
            except subprocess.TimeoutExpired:
                kind = "HANG"
            outcomes[kind] += 1
            if kind.startswith(("CRASH", "HANG")):
                keep = os.path.join(args.keep, f"{args.seed}-{i}-{os.path.basename(src)}")
                shutil.copy(case, keep)
                kept.append(f"{kind}: {keep}")
    for kind, n in outcomes.most_common():
        print(f"{n:6d}  {kind}")
    for k in kept:
        print(k)
    return 1 if kept else 0


if __name__ == "__main__":
    sys.exit(main())
