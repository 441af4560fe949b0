#!/usr/bin/env python3
"""Runs kernels_bench and prints each transform's best variant as a share of memcpy.

    python3 bench/kernel_ratios.py [--binary build/release/bench/kernels_bench] [--reps 5] [--processes 2]

Each process is pinned to one CPU, and every CPU gets --processes of them: on this VM the same
binary ran the small tiles at 40 GB/s on CPU 0 and 65 GB/s on CPU 1, memcpy 94 against 108 (CPU 0
takes twice the function-call interrupts, and whatever the host puts beside it), and an unpinned
process lands on either. The table gives the rates on the least disturbed CPU (the one whose
memcpy is fastest) and each CPU's best/memcpy next to them.

Each (transform, tile) line gives memcpy's rate, every variant's rate (medians of --reps runs in
each process) and the best variant's share of memcpy; the issue's target is 50%. For the
transforms that write as many bytes as they read, `move` is a second yardstick: the same bytes
loaded in order and stored as whole destination lines in the kernels' order, with no shuffles,
and the last column gives the best variant's share of it. Tiles named *_unpadded have
strides the executor never hands a kernel (it pads them), and pack_rows_8 only ever packs GPTQ
8-bit qzeros ([out][G], G a few hundred at most), never a weight-sized tile: both are shown for
comparison, not held to the target. Writes the table to bench/results/kernels.txt and the rates to
bench/results/kernels.csv.
"""
import argparse
import csv
import io
import math
import os
import pathlib
import statistics
import subprocess

from e2e import cpu_model  # the machines lent for a run differ, and so do the kernels' ratios

HERE = pathlib.Path(__file__).resolve().parent


def run_bench(binary, reps, processes, cpu):
    rates = {}
    for _ in range(processes):
        out = subprocess.run([binary, f"--benchmark_repetitions={reps}", "--benchmark_format=csv",
                              "--benchmark_min_time=0.2"], check=True, capture_output=True, text=True,
                             preexec_fn=lambda: os.sched_setaffinity(0, {cpu})).stdout
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


YARDSTICKS = ("memcpy", "move")  # lines that measure the machine, not a kernel variant


def best(by_variant):
    return max(r for v, r in by_variant.items() if v not in YARDSTICKS)


def share(by_variant, yardstick="memcpy"):
    """The best variant's rate as a share of the yardstick's."""
    return best(by_variant) / by_variant[yardstick]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(HERE.parent / "build/release/bench/kernels_bench"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2, help="processes per CPU")
    parser.add_argument("--stem", default="kernels", help="results/STEM.txt and .csv (one per machine: kernels_xeon)")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    per_cpu = {cpu: run_bench(args.binary, args.reps, args.processes, cpu) for cpu in cpus}

    def memcpy_mean(cpu):  # geometric mean of memcpy over the tiles
        rates = [by_variant["memcpy"] for by_variant in per_cpu[cpu].values()]
        return math.exp(sum(math.log(r) for r in rates) / len(rates))

    quiet = max(cpus, key=memcpy_mean)
    rates = per_cpu[quiet]
    variants = sorted({v for by_variant in rates.values() for v in by_variant if v not in YARDSTICKS},
                      key=lambda v: ["scalar", "avx2", "avx512", "neon"].index(v) if v in ("scalar", "avx2", "avx512", "neon") else 9)
    head = (f"{'transform':13} {'tile':20} {'memcpy':>7} {'move':>7} " + " ".join(f"{v:>7}" for v in variants) +
            "   best/memcpy" + "".join(f"{'cpu' + str(cpu):>6}" for cpu in cpus) + "  best/move")
    lines = [head, "-" * len(head)]
    for (op, tile), by_variant in rates.items():
        cells = " ".join(f"{by_variant[v]:7.1f}" if v in by_variant else f"{'-':>7}" for v in ("move", *variants))
        of_move = f"{100 * share(by_variant, 'move'):9.0f}%" if "move" in by_variant else " " * 10
        each_cpu = "".join(f"{100 * share(per_cpu[cpu][(op, tile)]):5.0f}%" for cpu in cpus)
        if tile.endswith("_unpadded"):
            mark = "  (not a production stride)"
        elif op == "pack_rows_8" and not tile.startswith("zeros_"):
            mark = "  (not a production shape)"
        else:
            mark = "" if share(by_variant) >= 0.5 else "  < 50%"
        lines.append(f"{op:13} {tile:20} {by_variant['memcpy']:7.1f} {cells}   {100 * share(by_variant):5.0f}%    "
                     f"{each_cpu}{of_move}{mark}".rstrip())
    table = "\n".join(lines) + (
        f"\n(GB/s of tile bytes read on cpu{quiet}, the CPU with the fastest memcpy; medians of {args.reps} "
        f"repetitions in each of {args.processes} processes per CPU, each pinned to its CPU; `move`: the same bytes "
        f"loaded in order and stored as the destination's lines, no shuffles, see bench/kernels_bench.cpp; "
        f"CPU: {cpu_model()})\n")
    print(table, end="")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / f"{args.stem}.txt").write_text(table)
    with open(results / f"{args.stem}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["cpu", "transform", "tile", "variant", "gb_per_s"])
        for cpu in cpus:
            for (op, tile), by_variant in per_cpu[cpu].items():
                for variant, rate in by_variant.items():
                    writer.writerow([cpu, op, tile, variant, f"{rate:.2f}"])


if __name__ == "__main__":
    main()
