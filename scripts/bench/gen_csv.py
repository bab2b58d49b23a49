#!/usr/bin/python3
"""Generate the stats benchmark CSV: 10 numeric columns (ints, fixed floats,
scientific, negatives), one text column, ~0.1% missing values.
Usage: gen_csv.py OUT.csv SIZE_MB [SEED]"""
import sys
import numpy as np

out, size_mb = sys.argv[1], float(sys.argv[2])
rng = np.random.default_rng(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
target = int(size_mb * 1e6)
written = 0
with open(out, "w") as f:
    f.write("id,a,b,c,d,e,f,g,h,i,name\n")
    base = 0
    while written < target:
        n = 100000
        cols = [
            np.arange(base, base + n).astype(str),
            rng.integers(-100000, 100000, n).astype(str),
            np.char.mod("%.3f", rng.normal(50, 20, n)),
            np.char.mod("%.6f", rng.random(n)),
            np.char.mod("%.4e", rng.lognormal(0, 2, n)),
            np.char.mod("%.2f", rng.uniform(-1000, 1000, n)),
            rng.integers(0, 10, n).astype(str),
            np.char.mod("%.5f", rng.normal(0, 1, n)),
            np.char.mod("%.1f", rng.exponential(100, n)),
            rng.integers(0, 2**40, n).astype(str),
            words[rng.integers(0, len(words), n)],
        ]
        for c in range(1, 10):
            miss = rng.random(n) < 0.001
            cols[c] = np.where(miss, "", cols[c])
        lines = "\n".join(",".join(r) for r in zip(*cols)) + "\n"
        f.write(lines)
        written += len(lines)
        base += n
