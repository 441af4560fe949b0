#!/usr/bin/env python3
"""Memory against tensor count: peak RSS of conversions of checkpoints with many small tensors.

    python3 bench/tensor_count.py                   # tiny preset, 1000 / 4000 / 8000 layers
    python3 bench/tensor_count.py --layers 500,2000

A checkpoint's tables (names, shapes, plan, output header, shard indexes) grow with its tensor
count, not its bytes: a 1T-parameter MoE has about 200k tensors. This synthesizes
`synth --preset tiny` with many layers (26 tensors each, cached under bench/cache/ as e2e.py
does), converts each to AWQ under `/usr/bin/time` and reports peak RSS, its share per tensor,
and the marginal cost of one more tensor between the sizes. It also synthesizes the same
checkpoint in 100 MB shards, converts that into a sharded model directory (`--out-dir
--max-shard-size 100MB`) and verifies the result, reporting both peaks, and the peak of a
conversion with `--verify`. Writes
bench/results/tensor_count.{csv,txt}. See bench/README.md.
"""
from __future__ import annotations

import argparse
import csv
import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from e2e import BENCH_DIR, REPO, ensure_checkpoint, log, remove

FIELDS = ["layers", "tensors", "header_mb", "file_mb", "seconds", "peak_rss_mib", "rss_kib_per_tensor",
          "sharded_dir_rss_mib", "verify_rss_mib", "convert_verify_rss_mib"]
SHARD_SIZE = "100MB"


def tensor_count(weights: Path) -> tuple[int, int]:
    with weights.open("rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
    return sum(1 for key in header if key != "__metadata__"), size


def timed(command: list[str], what: str) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one run under /usr/bin/time."""
    run = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"tensor_count: {what} failed: {run.stderr.strip()}")
    seconds, kib = run.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kib)


def convert(binary: Path, directory: Path, output: Path, *extra: str) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one conversion to AWQ."""
    result = timed([str(binary), "--model", str(directory), "--save_path", str(output), "--target_tool", "awq", "-q",
                    *extra], f"conversion of {directory}")
    output.unlink()
    return result


def sharded_peaks(binary: Path, cache: Path, layers: int, work: Path) -> tuple[int, int]:
    """Peak RSS in KiB of a sharded input converted into a sharded model directory, and of its verify."""
    sharded = cache / f"tiny-L{layers}-shards"
    # config.json: synth writes it since December 2026, and --out-dir needs it.
    if not (sharded / ".complete").exists() or not (sharded / "config.json").exists():
        remove(sharded)  # synth --force replaces only a directory with its marker, which older caches lack
        subprocess.run([str(binary), "synth", "--preset", "tiny", "--layers", str(layers), "--max-shard-size", SHARD_SIZE,
                        "--out", str(sharded), "--force", "-q"], check=True)
        (sharded / ".complete").write_text("synth --preset tiny --layers %d --max-shard-size %s\n" % (layers, SHARD_SIZE))
    out_dir = work / "out"
    _, convert_kib = timed([str(binary), "--model", str(sharded), "--out-dir", str(out_dir), "--max-shard-size", SHARD_SIZE,
                            "--target_tool", "awq", "-q"], f"conversion of {sharded} into a directory")
    _, verify_kib = timed([str(binary), "verify", "--model", str(sharded), "--converted", str(out_dir), "-q"],
                          f"verify of {out_dir}")
    return convert_kib, verify_kib


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, default=REPO / "build/release/ms2vllm")
    p.add_argument("--layers", default="1000,4000,8000", help="comma-separated layer counts (default: %(default)s)")
    p.add_argument("--cache", type=Path, default=BENCH_DIR / "cache")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = p.parse_args()

    rows = []
    for layers in [int(n) for n in args.layers.split(",")]:
        checkpoint = ensure_checkpoint(args.binary, args.cache, "tiny", layers, resynth=False)
        tensors, header_bytes = tensor_count(checkpoint.weights)
        with tempfile.TemporaryDirectory(dir=args.cache) as work:
            seconds, kib = convert(args.binary, checkpoint.directory, Path(work) / "out.safetensors")
            # --verify checks the output before the rename, with the conversion's tables still held.
            _, verified_kib = convert(args.binary, checkpoint.directory, Path(work) / "out.safetensors", "--verify")
            dir_kib, verify_kib = sharded_peaks(args.binary, args.cache, layers, Path(work))
        rows.append({"layers": layers, "tensors": tensors, "header_mb": round(header_bytes / 1e6, 1),
                     "file_mb": round(checkpoint.bytes / 1e6), "seconds": seconds, "peak_rss_mib": round(kib / 1024),
                     "rss_kib_per_tensor": round(kib / tensors, 2), "sharded_dir_rss_mib": round(dir_kib / 1024),
                     "verify_rss_mib": round(verify_kib / 1024), "convert_verify_rss_mib": round(verified_kib / 1024)})
        log(f"tensor_count: {rows[-1]}")

    lines = [" ".join(f"{name:>18}" for name in FIELDS)]
    lines += [" ".join(f"{row[name]:>18}" for name in FIELDS) for row in rows]
    for a, b in zip(rows, rows[1:]):
        marginal = (b["peak_rss_mib"] - a["peak_rss_mib"]) * 1024 * 1024 / (b["tensors"] - a["tensors"])
        lines.append(f"{a['tensors']} -> {b['tensors']} tensors: {marginal:.0f} bytes of peak RSS per added tensor")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tensor_count.txt").write_text(text)
    with (args.out / "tensor_count.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
