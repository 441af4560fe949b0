#!/usr/bin/env python3
"""Runs kernels_bench and prints each transform's best variant as a share of memcpy.

    python3 bench/kernel_ratios.py [--binary build/release/bench/kernels_bench] [--reps 5] [--processes 3]

Each (transform, tile) line gives memcpy's rate, every variant's rate (medians of --reps runs in
each of --processes processes)
and the best variant's share of memcpy; the issue's target is 50%. Tiles named *_unpadded have
strides the executor never hands a kernel (it pads them), and pack_rows_8 only ever packs GPTQ
8-bit qzeros ([out][G], G a few hundred at most), never a weight-sized tile: both are shown for
comparison, not held to the target. Writes the table to bench/results/kernels.txt and the rates to
bench/results/kernels.csv.
"""
import argparse
import csv
import io
import pathlib
import statistics
import subprocess

HERE = pathlib.Path(__file__).resolve().parent


def run_bench(binary, reps, processes):
    # Several processes, not only repetitions: a cache-resident tile's rate depends on where its
    # buffers' physical pages fall in the L2, which is fixed for one process (up to 10 points).
    rates = {}
    for _ in range(processes):
        out = subprocess.run([binary, f"--benchmark_repetitions={reps}", "--benchmark_format=csv",
                              "--benchmark_min_time=0.2"], check=True, capture_output=True, text=True).stdout
        rows = list(csv.reader(io.StringIO(out[out.index("name,"):])))
        header = rows[0]
        name_at, rate_at = header.index("name"), header.index("bytes_per_second")
        for row in rows[1:]:
            name = row[name_at]
            if name.endswith(("_mean", "_median", "_stddev", "_cv")):
                continue  # aggregates: the medians are taken here, over every repetition of every process
            op, tile, variant = name.split("/")[:3]
            rates.setdefault((op, tile), {}).setdefault(variant, []).append(float(row[rate_at]) / 1e9)
    return {key: {v: statistics.median(r) for v, r in by_variant.items()} for key, by_variant in rates.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(HERE.parent / "build/release/bench/kernels_bench"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--processes", type=int, default=3)
    args = parser.parse_args()
    rates = run_bench(args.binary, args.reps, args.processes)
    variants = sorted({v for by_variant in rates.values() for v in by_variant if v != "memcpy"},
                      key=lambda v: ["scalar", "avx2", "avx512", "neon"].index(v) if v in ("scalar", "avx2", "avx512", "neon") else 9)
    head = f"{'transform':13} {'tile':20} {'memcpy':>7} " + " ".join(f"{v:>7}" for v in variants) + "   best/memcpy"
    lines = [head, "-" * len(head)]
    for (op, tile), by_variant in rates.items():
        memcpy = by_variant["memcpy"]
        best = max(r for v, r in by_variant.items() if v != "memcpy")
        cells = " ".join(f"{by_variant.get(v, float('nan')):7.1f}" for v in variants)
        if tile.endswith("_unpadded"):
            mark = "  (not a production stride)"
        elif op == "pack_rows_8" and not tile.startswith("zeros_"):
            mark = "  (not a production shape)"
        else:
            mark = "" if best >= memcpy / 2 else "  < 50%"
        lines.append(f"{op:13} {tile:20} {memcpy:7.1f} {cells}   {100 * best / memcpy:5.0f}%{mark}")
    table = "\n".join(lines) + "\n(GB/s of tile bytes read, medians of %d repetitions in each of %d processes, one core)\n" % (
        args.reps, args.processes)
    print(table, end="")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "kernels.txt").write_text(table)
    with open(results / "kernels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["transform", "tile", "variant", "gb_per_s"])
        for (op, tile), by_variant in rates.items():
            for variant, rate in by_variant.items():
                writer.writerow([op, tile, variant, f"{rate:.2f}"])


if __name__ == "__main__":
    main()
