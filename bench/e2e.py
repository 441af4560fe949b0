#!/usr/bin/env python3
"""End-to-end benchmark of ms2vllm: whole, durable conversions next to `cp` + `sync`.

    python3 bench/e2e.py                 # 0.5b, 1.5b, 7b x awq, gptq x --threads 1, 2; 3 rounds
    python3 bench/e2e.py --quick         # 0.5b only, one round: a smoke test (~30 s)
    python3 bench/e2e.py --huge          # larger than RAM: llama3-70b --layers 30, default vs small chunks

Synthesizes the checkpoints it needs with `ms2vllm synth` (cached under bench/cache/, reused when
present), then runs every configuration `--reps` times, alternating (round r runs the copy and
every conversion once, in an order rotated by r), with `sync` before each run, under
`/usr/bin/time -v` for the peak RSS. Prints a table and writes CSV and an SVG chart into
--out (bench/results/). Python standard library only. See bench/README.md.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
GB = 1e9
MIB = 1 << 20
RSS_LIMIT_MIB = 512

# ms2vllm synth's presets (engine/synth_plan.cpp): hidden, intermediate, layers, heads, kv heads,
# head dim, vocab, qkv bias, experts (0: dense). Only used to estimate disk space before synthesizing.
SHAPES = {
    "tiny": (128, 256, 1, 4, 1, 32, 64, True, 0),
    "qwen2-0.5b": (896, 4864, 24, 14, 2, 64, 151936, True, 0),
    "qwen2-1.5b": (1536, 8960, 28, 12, 2, 128, 151936, True, 0),
    "qwen2-7b": (3584, 18944, 28, 28, 4, 128, 152064, True, 0),
    "llama3-8b": (4096, 14336, 32, 32, 8, 128, 128256, False, 0),
    "llama3-70b": (8192, 28672, 80, 64, 8, 128, 128256, False, 0),
    "qwen3-30b-a3b": (2048, 768, 48, 32, 4, 128, 151936, False, 128),
}
ALIASES = {"0.5b": "qwen2-0.5b", "1.5b": "qwen2-1.5b", "7b": "qwen2-7b", "8b": "llama3-8b", "70b": "llama3-70b",
           "30b-a3b": "qwen3-30b-a3b"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fail(message: str) -> "NoReturn":  # noqa: F821
    log(f"e2e: error: {message}")
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# Sizes, disk space, cache state


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size such as 4MB")
    base = 1024 if m.group(3) else 1000
    return int(float(m.group(1)) * base ** " KMGT".index(m.group(2).upper() or " "))


def estimate_checkpoint_bytes(preset: str, layers: int | None, group: int = 128) -> int:
    """W4A16 synth checkpoint size: int8 weights, f32 scales and offsets, bf16 floats."""
    hidden, inter, n_layers, heads, kv, head_dim, vocab, bias, experts = SHAPES[preset]
    n_layers = n_layers if layers is None else layers
    mlp = [(inter, hidden, False), (inter, hidden, False), (hidden, inter, False)]
    linears = [(heads * head_dim, hidden, bias), (kv * head_dim, hidden, bias), (kv * head_dim, hidden, bias),
               (hidden, heads * head_dim, False)] + mlp * max(experts, 1)
    per_layer = 2 * hidden * 2 + experts * hidden * 2
    for out, inp, has_bias in linears:
        per_layer += out * inp + 2 * out * (inp // group) * 4 + (out * 2 if has_bias else 0)
    return 2 * vocab * hidden * 2 + hidden * 2 + n_layers * per_layer


def free_bytes(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free


def need_space(path: Path, needed: int, what: str) -> None:
    free = free_bytes(path)
    if free < needed:
        fail(f"{what} needs about {needed / GB:.1f} GB free on {path}, only {free / GB:.1f} GB are "
             f"(delete bench/cache/ entries you do not need, or pass --work-dir on another disk)")


def cached_fraction(path: Path) -> float | None:
    """Share of the file's pages in the page cache (util-linux fincore), or None."""
    fincore = shutil.which("fincore")
    if not fincore:
        return None
    try:
        out = subprocess.run([fincore, "--bytes", "--noheadings", "--output", "RES,SIZE", str(path)],
                             capture_output=True, text=True, check=True).stdout.split()
        return int(out[0]) / max(1, int(out[1]))
    except (subprocess.CalledProcessError, ValueError, IndexError):
        return None


def sync() -> None:
    subprocess.run(["sync"], check=True)


def drop_caches() -> None:
    sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Running one command under /usr/bin/time -v


@dataclass
class Measured:
    seconds: float
    rss_kib: int
    major_faults: int
    minor_faults: int
    voluntary_cs: int
    involuntary_cs: int
    cpu_percent: int
    user_s: float
    sys_s: float


TIME_FIELDS = {
    "Maximum resident set size (kbytes)": "rss_kib",
    "Major (requiring I/O) page faults": "major_faults",
    "Minor (reclaiming a frame) page faults": "minor_faults",
    "Voluntary context switches": "voluntary_cs",
    "Involuntary context switches": "involuntary_cs",
    "Percent of CPU this job got": "cpu_percent",
    "User time (seconds)": "user_s",
    "System time (seconds)": "sys_s",
}


def check_gnu_time() -> str:
    path = "/usr/bin/time"
    if not os.access(path, os.X_OK):
        fail("/usr/bin/time is missing (GNU time, for the peak RSS): apt-get install time")
    probe = subprocess.run([path, "-v", "true"], capture_output=True, text=True)
    if "Maximum resident set size" not in probe.stderr:
        fail("/usr/bin/time -v does not report 'Maximum resident set size': install GNU time (apt-get install time)")
    return path


def run_measured(command: list[str], scratch: Path) -> Measured:
    report = scratch / "time-v.txt"
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", "-o", str(report), *command], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        fail(f"command failed ({proc.returncode}): {' '.join(command)}\n{proc.stdout}{proc.stderr}")
    values: dict[str, float] = {}
    for line in report.read_text().splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key in TIME_FIELDS:
            values[TIME_FIELDS[key]] = float(value.rstrip("%") or 0)
    report.unlink(missing_ok=True)
    return Measured(seconds=seconds, rss_kib=int(values.get("rss_kib", 0)),
                    major_faults=int(values.get("major_faults", 0)), minor_faults=int(values.get("minor_faults", 0)),
                    voluntary_cs=int(values.get("voluntary_cs", 0)), involuntary_cs=int(values.get("involuntary_cs", 0)),
                    cpu_percent=int(values.get("cpu_percent", 0)), user_s=values.get("user_s", 0.0),
                    sys_s=values.get("sys_s", 0.0))


# ---------------------------------------------------------------------------------------------
# Checkpoints


@dataclass
class Checkpoint:
    label: str     # "qwen2-1.5b" or "llama3-70b-L30"
    directory: Path
    weights: Path
    description: Path
    bytes: int


def checkpoint_label(preset: str, layers: int | None) -> str:
    return preset if layers is None else f"{preset}-L{layers}"


def ensure_checkpoint(binary: Path, cache: Path, preset: str, layers: int | None, resynth: bool) -> Checkpoint:
    """The cached synthetic checkpoint, synthesized first if missing (or if --resynth)."""
    label = checkpoint_label(preset, layers)
    directory = cache / label
    marker = directory / ".complete"
    command = [str(binary), "synth", "--preset", preset, "--out", str(directory), "--force", "--quiet"]
    if layers is not None:
        command += ["--layers", str(layers)]
    if resynth or not marker.exists():
        remove(directory)
        estimate = estimate_checkpoint_bytes(preset, layers)
        need_space(cache, int(estimate * 1.02) + (1 << 30), f"synthesizing {label}")
        log(f"e2e: synthesizing {label} (~{estimate / GB:.1f} GB) into {directory} ...")
        start = time.perf_counter()
        subprocess.run(command, check=True)
        log(f"e2e: synthesized {label} in {time.perf_counter() - start:.1f} s")
        marker.write_text(json.dumps({"command": command[1:], "created": datetime.datetime.now().isoformat()}) + "\n")
    weights = sorted(directory.glob("*.safetensors"))
    descriptions = sorted(directory.glob("quant_model_description*.json"))
    if len(weights) != 1 or len(descriptions) != 1:
        fail(f"{directory}: expected one .safetensors and one description (delete it or pass --resynth)")
    return Checkpoint(label, directory, weights[0], descriptions[0], weights[0].stat().st_size)


# ---------------------------------------------------------------------------------------------
# Configurations and runs


@dataclass(frozen=True)
class Config:
    kind: str              # "copy", "awq" or "gptq"
    threads: int = 0
    chunk: str = ""        # --chunk-size as typed, "" for the binary's default
    binary: str = ""       # another build to compare (--also), "" for --binary

    @property
    def name(self) -> str:
        if self.kind == "copy":
            return "cp+sync"
        return (f"{self.kind} t{self.threads}" + (f" c{self.chunk}" if self.chunk else "")
                + (f" [{Path(self.binary).name}]" if self.binary else ""))


@dataclass
class Run:
    checkpoint: Checkpoint
    config: Config
    round: int
    measured: Measured
    output_bytes: int
    input_cached: float | None
    load: float  # 1-minute load average when the run started: above the CPU count, others compete


COPY_SYNC = "system"  # --copy-sync: "system" runs `sync`, "file" runs `sync FILE` (an fsync of the copy only)


def command_for(binary: Path, ckpt: Checkpoint, config: Config, output: Path) -> list[str]:
    if config.kind == "copy":
        script = 'cp -- "$1" "$2" && sync' + (' -- "$2"' if COPY_SYNC == "file" else "")
        return ["sh", "-c", script, "cp+sync", str(ckpt.weights), str(output)]
    command = [config.binary or str(binary), "convert", "--model", str(ckpt.weights), "--json", str(ckpt.description),
               "--save_path", str(output), "--target_tool", config.kind, "--quiet"]
    if config.threads:
        command += ["--threads", str(config.threads)]
    if config.chunk:
        command += ["--chunk-size", config.chunk]
    return command


def wait_for_quiet(max_load: float | None, patience: float = 300) -> None:
    """Waits (at most `patience` seconds) until the 1-minute load average is at most `max_load`."""
    if max_load is None:
        return
    deadline = time.monotonic() + patience
    while os.getloadavg()[0] > max_load and time.monotonic() < deadline:
        time.sleep(5)


def run_once(binary: Path, ckpt: Checkpoint, config: Config, work: Path, round_index: int, cold: bool,
             max_load: float | None = None) -> Run:
    output = work / ("copy.safetensors" if config.kind == "copy" else f"{config.kind}.safetensors")
    remove(output)
    need_space(work, int(ckpt.bytes * 1.05) + (1 << 30), f"{config.name} of {ckpt.label}")
    wait_for_quiet(max_load)
    if cold:
        drop_caches()
    sync()  # nothing of an earlier run left to write back inside this run's time
    cached = cached_fraction(ckpt.weights)
    load = os.getloadavg()[0]
    measured = run_measured(command_for(binary, ckpt, config, output), work)
    size = output.stat().st_size
    remove(output)
    return Run(ckpt, config, round_index, measured, size, cached, load)


@dataclass
class Summary:
    checkpoint: Checkpoint
    config: Config
    runs: list[Run] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        return [r.measured.seconds for r in self.runs]

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def gbps(self) -> float:
        return self.checkpoint.bytes / GB / self.median_s

    @property
    def rss_mib(self) -> float:
        return max(r.measured.rss_kib for r in self.runs) / 1024

    @property
    def output_bytes(self) -> int:
        return self.runs[-1].output_bytes

    @property
    def cached(self) -> str:
        values = [r.input_cached for r in self.runs if r.input_cached is not None]
        return f"{100 * min(values):.0f}-{100 * max(values):.0f}%" if values else "n/a"


def summarize(runs: list[Run]) -> list[Summary]:
    table: dict[tuple[str, Config], Summary] = {}
    for run in runs:
        key = (run.checkpoint.label, run.config)
        table.setdefault(key, Summary(run.checkpoint, run.config)).runs.append(run)
    return list(table.values())


def copy_baseline(summaries: list[Summary], label: str) -> Summary | None:
    return next((s for s in summaries if s.checkpoint.label == label and s.config.kind == "copy"), None)


def linear_fit(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least squares seconds = a + b * GB: (a, b, r^2)."""
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    syy = sum((p[1] - my) ** 2 for p in points)
    b = sxy / sxx if sxx else 0.0
    a = my - b * mx
    r2 = (sxy * sxy / (sxx * syy)) if sxx and syy else 1.0
    return a, b, r2


# ---------------------------------------------------------------------------------------------
# Output: table, CSV, SVG


def print_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    text = "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
    print(text)
    return text


def summary_rows(summaries: list[Summary]) -> tuple[list[str], list[list[str]]]:
    header = ["model", "config", "in GB", "out GB", "median s", "min s", "max s", "GB/s", "peak RSS MiB",
              "x cp+sync", "input cached", "runs"]
    rows = []
    for s in summaries:
        base = copy_baseline(summaries, s.checkpoint.label)
        ratio = s.median_s / base.median_s if base else float("nan")
        rss = f"{s.rss_mib:.0f}" + (" OVER" if s.config.kind != "copy" and s.rss_mib > RSS_LIMIT_MIB else "")
        rows.append([s.checkpoint.label, s.config.name, f"{s.checkpoint.bytes / GB:.2f}", f"{s.output_bytes / GB:.2f}",
                     f"{s.median_s:.2f}", f"{min(s.seconds):.2f}", f"{max(s.seconds):.2f}", f"{s.gbps:.2f}", rss,
                     f"{ratio:.2f}", s.cached, str(len(s.runs))])
    return header, rows


def linearity_rows(summaries: list[Summary]) -> tuple[list[str], list[list[str]]]:
    header = ["config", "s/GB per model", "fit: s = a + b*GB", "r^2", "max/min s/GB"]
    rows = []
    for config in dict.fromkeys(s.config for s in summaries):
        points = sorted((s.checkpoint.bytes / GB, s.median_s) for s in summaries if s.config == config)
        if len(points) < 2:
            continue
        per_gb = [t / g for g, t in points]
        a, b, r2 = linear_fit(points)
        rows.append([config.name, " ".join(f"{x:.2f}" for x in per_gb), f"{a:+.2f} + {b:.2f}*GB", f"{r2:.4f}",
                     f"{max(per_gb) / min(per_gb):.2f}"])
    return header, rows


def write_runs_csv(path: Path, runs: list[Run]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "config", "kind", "threads", "chunk", "round", "input_bytes", "output_bytes", "seconds",
                    "gb_per_s", "peak_rss_kib", "major_faults", "minor_faults", "voluntary_cs", "involuntary_cs",
                    "cpu_percent", "user_s", "sys_s", "input_cached", "load_avg_1m"])
        for r in runs:
            m = r.measured
            w.writerow([r.checkpoint.label, r.config.name, r.config.kind, r.config.threads, r.config.chunk, r.round,
                        r.checkpoint.bytes, r.output_bytes, f"{m.seconds:.4f}", f"{r.checkpoint.bytes / GB / m.seconds:.4f}",
                        m.rss_kib, m.major_faults, m.minor_faults, m.voluntary_cs, m.involuntary_cs, m.cpu_percent,
                        f"{m.user_s:.2f}", f"{m.sys_s:.2f}", "" if r.input_cached is None else f"{r.input_cached:.3f}",
                        f"{r.load:.2f}"])


def write_summary_csv(path: Path, summaries: list[Summary]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "config", "kind", "threads", "chunk", "input_bytes", "output_bytes", "runs", "median_s",
                    "min_s", "max_s", "gb_per_s", "peak_rss_mib", "ratio_to_cp_sync", "input_cached"])
        for s in summaries:
            base = copy_baseline(summaries, s.checkpoint.label)
            ratio = s.median_s / base.median_s if base else ""
            w.writerow([s.checkpoint.label, s.config.name, s.config.kind, s.config.threads, s.config.chunk,
                        s.checkpoint.bytes, s.output_bytes, len(s.runs), f"{s.median_s:.4f}", f"{min(s.seconds):.4f}",
                        f"{max(s.seconds):.4f}", f"{s.gbps:.4f}", f"{s.rss_mib:.1f}",
                        f"{ratio:.4f}" if ratio != "" else "", s.cached])


PALETTE = ["#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#59a14f", "#8cd17d", "#b6992d", "#f1ce63", "#499894",
           "#86bcb6", "#e15759", "#ff9d9a", "#79706e", "#bab0ac", "#d37295", "#fabfd2"]
COPY_COLOR = "#555555"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(math.ceil(top / step - 1e-9)) + 1)]


def esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Svg:
    def __init__(self, width: int, height: int):
        self.width, self.height, self.items = width, height, []

    def add(self, item: str) -> None:
        self.items.append(item)

    def text(self, x, y, s, size=12, anchor="start", weight="normal", rotate=None, fill="#222"):
        transform = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
                 f'fill="{fill}"{transform}>{esc(s)}</text>')

    def line(self, x1, y1, x2, y2, stroke="#999", width=1, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" stroke-width="{width}"{d}/>')

    def rect(self, x, y, w, h, fill, title=None):
        t = f"<title>{esc(title)}</title>" if title else ""
        self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{fill}">{t}</rect>')

    def render(self) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" font-family="Helvetica, Arial, sans-serif">\n'
                f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(self.items) + "\n</svg>\n")


def axes(svg: Svg, x0, y0, w, h, ticks, fmt, label):
    """Y grid and labels for a panel whose plot area is (x0, y0, w, h), values 0..ticks[-1]."""
    for t in ticks:
        y = y0 + h - h * t / ticks[-1]
        svg.line(x0, y, x0 + w, y, stroke="#e4e4e4")
        svg.text(x0 - 6, y + 4, fmt(t), size=11, anchor="end")
    svg.line(x0, y0 + h, x0 + w, y0 + h, stroke="#333")
    svg.line(x0, y0, x0, y0 + h, stroke="#333")
    svg.text(x0 - 46, y0 + h / 2, label, size=12, anchor="middle", rotate=-90)


def grouped_bars(svg: Svg, x0, y0, w, h, summaries, configs, colors, value, label, fmt, limit=None, whiskers=None):
    models = list(dict.fromkeys(s.checkpoint.label for s in summaries))
    lookup = {(s.checkpoint.label, s.config): s for s in summaries}
    top = max([value(s) for s in summaries] + ([whiskers(s)[1] for s in summaries] if whiskers else []) +
              ([limit * 1.08] if limit else []))
    ticks = nice_ticks(top * 1.12)
    axes(svg, x0, y0, w, h, ticks, fmt, label)
    scale = lambda v: y0 + h - h * v / ticks[-1]
    group_w = w / len(models)
    bar_w = min(38.0, group_w * 0.84 / len(configs))
    for g, model in enumerate(models):
        gx = x0 + g * group_w + (group_w - bar_w * len(configs)) / 2
        for i, config in enumerate(configs):
            s = lookup.get((model, config))
            if s is None:
                continue
            v = value(s)
            x = gx + i * bar_w
            svg.rect(x + 1, scale(v), bar_w - 2, y0 + h - scale(v), colors[config], f"{model} {config.name}: {fmt(v)}")
            if whiskers:
                lo, hi = whiskers(s)
                cx = x + bar_w / 2
                svg.line(cx, scale(lo), cx, scale(hi), stroke="#222")
                svg.line(cx - 3, scale(lo), cx + 3, scale(lo), stroke="#222")
                svg.line(cx - 3, scale(hi), cx + 3, scale(hi), stroke="#222")
            top_y = scale(whiskers(s)[1]) if whiskers else scale(v)
            svg.text(x + bar_w / 2, top_y - 4, fmt(v), size=9, anchor="middle")
        gb = next(s.checkpoint.bytes for s in summaries if s.checkpoint.label == model)
        svg.text(x0 + g * group_w + group_w / 2, y0 + h + 16, f"{model} ({gb / GB:.1f} GB)", size=12, anchor="middle")
    if limit:
        svg.line(x0, scale(limit), x0 + w, scale(limit), stroke="#d62728", width=1.5, dash="6,4")
        svg.text(x0 + w - 4, scale(limit) - 5, f"limit {fmt(limit)} MiB", size=11, anchor="end", fill="#d62728")


def write_svg(path: Path, summaries: list[Summary], title: str, subtitle: str) -> None:
    configs = list(dict.fromkeys(s.config for s in sorted(summaries, key=lambda s: s.config.kind != "copy")))
    colors, palette = {}, iter(PALETTE * 4)
    for c in configs:
        colors[c] = COPY_COLOR if c.kind == "copy" else next(palette)
    width, left = 1100, 70
    svg = Svg(width, 860)
    svg.text(width / 2, 26, title, size=17, anchor="middle", weight="bold")
    svg.text(width / 2, 46, subtitle, size=11, anchor="middle", fill="#555")
    # Legend.
    lx, ly = left, 66
    for c in configs:
        svg.rect(lx, ly - 10, 12, 12, colors[c])
        svg.text(lx + 16, ly, c.name, size=11)
        lx += 24 + 7 * len(c.name)
        if lx > width - 120:
            lx, ly = left, ly + 18
    top = ly + 20
    # Panel 1: throughput per configuration, the copy baseline first in each group.
    svg.text(left, top + 4, "Throughput (input GB / median wall second; whiskers: slowest and fastest run)", size=13, weight="bold")
    grouped_bars(svg, left, top + 16, width - left - 20, 300, summaries, configs, colors,
                 value=lambda s: s.gbps, label="GB/s", fmt=lambda v: f"{v:.2f}",
                 whiskers=lambda s: (s.checkpoint.bytes / GB / max(s.seconds), s.checkpoint.bytes / GB / min(s.seconds)))
    # Panel 2: seconds against input size (linearity). Panel 3: peak RSS.
    p2y = top + 16 + 300 + 60
    half = (width - left - 20 - 90) / 2
    svg.text(left, p2y - 12, "Median seconds against input size (linear = straight line through ~0)", size=13, weight="bold")
    points = {c: sorted((s.checkpoint.bytes / GB, s.median_s) for s in summaries if s.config == c) for c in configs}
    max_x = max(x for pts in points.values() for x, _ in pts)
    max_y = max(y for pts in points.values() for _, y in pts)
    xt, yt = nice_ticks(max_x * 1.05), nice_ticks(max_y * 1.1)
    ph = 300
    axes(svg, left, p2y, half, ph, yt, lambda v: f"{v:g}", "seconds")
    sx = lambda v: left + half * v / xt[-1]
    sy = lambda v: p2y + ph - ph * v / yt[-1]
    for t in xt:
        svg.text(sx(t), p2y + ph + 16, f"{t:g}", size=11, anchor="middle")
    svg.text(left + half / 2, p2y + ph + 34, "input GB", size=12, anchor="middle")
    for c, pts in points.items():
        dash = ' stroke-dasharray="5,3"' if c.kind == "copy" else ""
        if len(pts) > 1:
            d = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(pts))
            svg.add(f'<path d="{d}" fill="none" stroke="{colors[c]}" stroke-width="2"{dash}/>')
        for x, y in pts:
            svg.add(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{colors[c]}"><title>{esc(c.name)}: '
                    f'{y:.2f} s for {x:.2f} GB</title></circle>')
    p3x = left + half + 90
    svg.text(p3x, p2y - 12, "Peak RSS (/usr/bin/time -v, max over runs)", size=13, weight="bold")
    grouped_bars(svg, p3x, p2y, half, ph, summaries, configs, colors, value=lambda s: s.rss_mib, label="MiB",
                 fmt=lambda v: f"{v:.0f}", limit=RSS_LIMIT_MIB)
    path.write_text(svg.render())


# ---------------------------------------------------------------------------------------------
# Safetensors comparison, tensor by tensor, in bounded memory


def read_header(path: Path) -> tuple[dict, int]:
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > 100 * MIB:
            raise ValueError(f"{path}: header of {length} bytes")
        header = json.loads(f.read(length))
    return header, 8 + length


def tensors_of(header: dict) -> dict[str, dict]:
    return {k: v for k, v in header.items() if k != "__metadata__"}


class CacheDropper:
    """Drops what is behind a forward reader from the page cache, lagging by a window so that
    read-ahead pages not read yet stay (dropping them would read them twice)."""

    def __init__(self, fd: int, window: int = 256 * MIB):
        self.fd, self.window, self.done = fd, window, 0

    def behind(self, offset: int) -> None:
        if offset - self.done >= 2 * self.window:
            os.posix_fadvise(self.fd, self.done, offset - self.window - self.done, os.POSIX_FADV_DONTNEED)
            self.done = offset - self.window


def read_exact(fd: int, view: memoryview, offset: int, path: Path) -> None:
    """Fills `view` from `offset` (into a buffer reused across reads: fresh buffers fault)."""
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n <= 0:
            raise ValueError(f"{path}: truncated at byte {offset + done}")
        done += n


def tensor_digests(path: Path, chunk: int = 16 * MIB) -> tuple[dict, dict[str, str]]:
    """Header and a SHA-256 per tensor, reading `chunk` bytes at a time."""
    header, base = read_header(path)
    digests = {}
    fd = os.open(path, os.O_RDONLY)
    dropper = CacheDropper(fd)
    view = memoryview(bytearray(chunk))
    try:
        for name, info in sorted(tensors_of(header).items(), key=lambda kv: kv[1]["data_offsets"][0]):
            begin, end = info["data_offsets"]
            h = hashlib.sha256()
            at = base + begin
            while at < base + end:
                n = min(chunk, base + end - at)
                read_exact(fd, view[:n], at, path)
                h.update(view[:n])
                at += n
            digests[name] = h.hexdigest()
            dropper.behind(base + end)
    finally:
        os.close(fd)
    return header, digests


def compare_headers(a: dict, b: dict) -> list[str]:
    problems = []
    ta, tb = tensors_of(a), tensors_of(b)
    if a.get("__metadata__") != b.get("__metadata__"):
        problems.append("__metadata__ differs")
    for name in sorted(set(ta) ^ set(tb)):
        problems.append(f"{name}: only in {'first' if name in ta else 'second'}")
    for name in sorted(set(ta) & set(tb)):
        for key in ("dtype", "shape"):
            if ta[name][key] != tb[name][key]:
                problems.append(f"{name}: {key} {ta[name][key]} vs {tb[name][key]}")
        la = ta[name]["data_offsets"][1] - ta[name]["data_offsets"][0]
        lb = tb[name]["data_offsets"][1] - tb[name]["data_offsets"][0]
        if la != lb:
            problems.append(f"{name}: {la} vs {lb} bytes")
    return problems


def compare_files(a: Path, b: Path, chunk: int = 16 * MIB) -> tuple[list[str], int, int]:
    """Tensor-by-tensor comparison of two safetensors files: (problems, tensors, bytes compared)."""
    ha, base_a = read_header(a)
    hb, base_b = read_header(b)
    problems = compare_headers(ha, hb)
    if problems:
        return problems, 0, 0
    ta, tb = tensors_of(ha), tensors_of(hb)
    compared = 0
    fa, fb = os.open(a, os.O_RDONLY), os.open(b, os.O_RDONLY)
    drop_a, drop_b = CacheDropper(fa), CacheDropper(fb)
    buf_a, buf_b = bytearray(chunk), bytearray(chunk)
    va, vb = memoryview(buf_a), memoryview(buf_b)
    try:
        for name in sorted(ta, key=lambda n: ta[n]["data_offsets"][0]):
            oa, ob = base_a + ta[name]["data_offsets"][0], base_b + tb[name]["data_offsets"][0]
            left = ta[name]["data_offsets"][1] - ta[name]["data_offsets"][0]
            pos = 0
            while pos < left:
                n = min(chunk, left - pos)
                read_exact(fa, va[:n], oa + pos, a)
                read_exact(fb, vb[:n], ob + pos, b)
                # bytearray == is a memcmp; memoryview == goes element by element.
                same = buf_a == buf_b if n == chunk else va[:n].tobytes() == vb[:n].tobytes()
                if not same:
                    problems.append(f"{name}: bytes differ in [{pos}, {pos + n})")
                    break
                pos += n
            compared += left
            drop_a.behind(oa + left)  # keep the page cache from filling with what is done
            drop_b.behind(ob + left)
    finally:
        os.close(fa)
        os.close(fb)
    return problems, len(ta), compared


# ---------------------------------------------------------------------------------------------
# The main benchmark and the larger-than-RAM check


def environment(binary: Path, work: Path) -> dict:
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    fs_type = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "--target", str(work)], capture_output=True,
                             text=True).stdout.strip().replace("  ", " ") or "?"
    git = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                         text=True).stdout.strip()
    mem = next((int(l.split()[1]) * 1024 for l in Path("/proc/meminfo").read_text().splitlines()
                if l.startswith("MemTotal:")), 0)
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), "binary": str(binary),
            "version": version.replace("\n", "; "), "git": git, "kernel": platform.release(),
            "cpu_model": cpu_model(), "cpus": os.cpu_count(), "memory_gb": round(mem / GB, 1), "work_dir": str(work),
            "file_system": fs_type}


def cpu_model() -> str:
    """The CPU's name as /proc/cpuinfo gives it: machines lent for a run differ (AMD EPYC, Intel Xeon)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(("model name", "Model")):  # x86, then Arm's wording
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def resolve_models(text: str) -> list[tuple[str, int | None]]:
    models = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, _, layers = item.partition(":")
        preset = ALIASES.get(name, name)
        if preset not in SHAPES:
            fail(f"unknown model '{name}' (presets: {', '.join(SHAPES)}; aliases: {', '.join(ALIASES)}; "
                 f"PRESET:LAYERS for fewer layers)")
        models.append((preset, int(layers) if layers else None))
    return models


def main_benchmark(args, binary: Path) -> None:
    models = resolve_models(args.models)
    targets = [t for t in args.targets.split(",") if t]
    threads = [int(t) for t in args.threads.split(",") if t]
    chunks = [c for c in args.chunk_sizes.split(",")] if args.chunk_sizes else [""]
    binaries = [""] + [str(Path(b).resolve()) for b in args.also.split(",") if b]
    configs = [Config("copy")] + [Config(t, n, c, b) for t in targets for b in binaries for n in threads for c in chunks]
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    meta = environment(binary, work)
    log(f"e2e: {meta['version']}")
    log(f"e2e: {len(models)} model(s) x {len(configs)} configurations x {args.reps} rounds; work dir {work} "
        f"({meta['file_system']}, {free_bytes(work) / GB:.0f} GB free)")
    runs: list[Run] = []
    stopped = None  # why the runs stopped early; what was measured until then is still reported
    try:
        for preset, layers in models:
            ckpt = ensure_checkpoint(binary, args.cache, preset, layers, args.resynth)
            for r in range(args.reps):
                shift = r % len(configs)
                for config in configs[shift:] + configs[:shift]:
                    run = run_once(binary, ckpt, config, work, r, args.cold, args.max_load)
                    runs.append(run)
                    log(f"e2e: {ckpt.label:>16} round {r + 1}/{args.reps} {config.name:<18} {run.measured.seconds:7.2f} s "
                        f"{ckpt.bytes / GB / run.measured.seconds:6.2f} GB/s  RSS {run.measured.rss_kib / 1024:6.0f} MiB  "
                        f"load {run.load:4.1f}")
    except (SystemExit, KeyboardInterrupt, subprocess.CalledProcessError) as e:
        stopped = "interrupted" if isinstance(e, KeyboardInterrupt) else "a run failed (see above)"
        if not runs:
            raise
        log(f"e2e: stopped early: {stopped}; reporting the {len(runs)} runs done")
    summaries = summarize(runs)
    order = {c: i for i, c in enumerate(configs)}
    summaries.sort(key=lambda s: (s.checkpoint.bytes, order[s.config]))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    print(f"\nms2vllm end-to-end: durable conversion (fsync) vs cp + {'sync' if COPY_SYNC == 'system' else 'sync FILE'} "
          f"of the same input; sync before each run; "
          f"median of {args.reps}; input {'dropped from' if args.cold else 'as left in'} the page cache")
    print(f"{meta['version']}; {meta['cpus']} CPUs ({meta['cpu_model']}), {meta['memory_gb']} GB RAM, {meta['file_system']}, "
          f"git {meta['git']}\n")
    header, rows = summary_rows(summaries)
    text = print_table(rows, header)
    busiest = max(r.load for r in runs)
    if busiest > (os.cpu_count() or 1):
        note = (f"WARNING: the 1-minute load average reached {busiest:.1f} on {os.cpu_count()} CPUs during these runs: "
                f"other processes competed for the CPUs and the disk; the figures understate ms2vllm (see e2e_runs.csv)")
        print("\n" + note)
        text += "\n\n" + note
    lin_header, lin_rows = linearity_rows(summaries)
    if lin_rows:
        print("\nLinearity (median seconds per input GB, per model from small to large):")
        text += "\n\n" + print_table(lin_rows, lin_header)
    write_runs_csv(out / "e2e_runs.csv", runs)
    write_summary_csv(out / "e2e_summary.csv", summaries)
    (out / "e2e_env.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "e2e_table.txt").write_text(text + "\n")
    subtitle = (f"{meta['version'].split(';')[0]} ({meta['git']}) - {meta['cpus']} CPUs, {meta['memory_gb']} GB RAM, "
                f"{meta['file_system']} - median of {args.reps}, sync before each run, "
                f"input {'cold' if args.cold else 'in page cache'}, max 1-min load {max(r.load for r in runs):.1f}")
    write_svg(out / "e2e.svg", summaries, "ms2vllm: whole durable conversion vs cp + sync", subtitle)
    print(f"\nwrote {out / 'e2e_summary.csv'}, {out / 'e2e_runs.csv'}, {out / 'e2e.svg'}, {out / 'e2e_table.txt'}")
    if stopped:
        print(f"INCOMPLETE: {stopped}")
        sys.exit(1)


def huge_check(args, binary: Path) -> None:
    """Larger than RAM: default chunks vs --chunk-size small, outputs compared tensor by tensor."""
    ckpt = ensure_checkpoint(binary, args.cache, args.huge_preset, args.huge_layers, args.resynth)
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    meta = environment(binary, work)
    mem = meta["memory_gb"] * GB
    log(f"e2e: huge check on {ckpt.label}: {ckpt.bytes / GB:.1f} GB input, {mem / GB:.1f} GB RAM"
        + ("" if ckpt.bytes > mem else "  (NOT larger than RAM: raise --huge-layers)"))
    rows, all_ok = [], True
    for target in [t for t in args.targets.split(",") if t]:
        a, b = work / f"huge-{target}-default.safetensors", work / f"huge-{target}-small.safetensors"
        results = {}
        digests = None
        expected = int(ckpt.bytes * 0.75)  # an output is smaller than its input; known exactly after the first
        for tag, output, chunk in (("default", a, ""), (f"chunk {args.huge_chunk}", b, args.huge_chunk)):
            config = Config(target, 0, chunk)
            remove(output)
            need_space(work, expected + (2 << 30), f"{target} of {ckpt.label}")
            sync()
            cached = cached_fraction(ckpt.weights)
            measured = run_measured(command_for(binary, ckpt, config, output), work)
            size = output.stat().st_size
            results[tag] = (measured, size, cached)
            expected = size
            log(f"e2e: huge {target} {tag}: {measured.seconds:.1f} s, {ckpt.bytes / GB / measured.seconds:.2f} GB/s, "
                f"RSS {measured.rss_kib / 1024:.0f} MiB, {size / GB:.1f} GB out")
            if output is a and free_bytes(work) < size + (4 << 30):
                # Both outputs do not fit: keep a SHA-256 per tensor of the first instead of the file.
                log("e2e: not enough space to keep both outputs: hashing the first one tensor by tensor, then deleting it")
                digests = tensor_digests(a)
                remove(a)
        start = time.perf_counter()
        if digests is None:
            problems, count, compared = compare_files(a, b)
            how = "byte comparison"
        else:
            header_b, digests_b = tensor_digests(b)
            problems = compare_headers(digests[0], header_b)
            problems += [f"{n}: SHA-256 differs" for n in sorted(digests[1]) if digests_b.get(n) != digests[1][n]]
            count, compared, how = len(digests[1]), sum(
                v["data_offsets"][1] - v["data_offsets"][0] for v in tensors_of(header_b).values()), "SHA-256 per tensor"
        log(f"e2e: compared {count} tensors, {compared / GB:.1f} GB ({how}) in {time.perf_counter() - start:.0f} s: "
            + ("equal" if not problems else f"{len(problems)} DIFFERENCES: " + "; ".join(problems[:5])))
        remove(a)
        remove(b)
        ok = not problems and all(m.rss_kib / 1024 <= RSS_LIMIT_MIB for m, _, _ in results.values())
        all_ok &= ok
        for tag, (m, size, cached) in results.items():
            rows.append([ckpt.label, target, tag, f"{ckpt.bytes / GB:.2f}", f"{size / GB:.2f}", f"{m.seconds:.1f}",
                         f"{ckpt.bytes / GB / m.seconds:.2f}", f"{m.rss_kib / 1024:.0f}", f"{m.major_faults}",
                         "n/a" if cached is None else f"{100 * cached:.0f}%",
                         "equal" if not problems else "DIFFERENT", how])
    header = ["model", "target", "chunks", "in GB", "out GB", "seconds", "GB/s", "peak RSS MiB", "major faults",
              "input cached", "outputs", "compared by"]
    print(f"\nms2vllm larger-than-RAM check ({meta['memory_gb']} GB RAM): default chunks vs --chunk-size "
          f"{args.huge_chunk}, outputs compared tensor by tensor; RSS limit {RSS_LIMIT_MIB} MiB\n")
    text = print_table(rows, header)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    with (out / "e2e_huge.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    (out / "e2e_huge.txt").write_text(text + "\n")
    (out / "e2e_huge_env.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"\n{'PASS' if all_ok else 'FAIL'}; wrote {out / 'e2e_huge.csv'}")
    if not all_ok:
        sys.exit(2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, default=REPO / "build/release/ms2vllm", help="ms2vllm to run (default: %(default)s)")
    p.add_argument("--also", default="", help="comma-separated other ms2vllm builds to run the same conversions with, "
                   "labelled by file name (A/B tests of engine changes)")
    p.add_argument("--models", default="0.5b,1.5b,7b",
                   help="comma-separated presets or aliases (0.5b, 1.5b, 7b, 8b, 70b, 30b-a3b); PRESET:LAYERS for fewer layers (default: %(default)s)")
    p.add_argument("--targets", default="awq,gptq", help="comma-separated: awq, gptq (default: %(default)s)")
    p.add_argument("--threads", default="1,2", help="comma-separated --threads values (default: %(default)s)")
    p.add_argument("--chunk-sizes", default="", help="comma-separated --chunk-size values, each its own configuration "
                   "(default: the binary's own)")
    p.add_argument("--reps", type=int, default=3, help="rounds; each runs every configuration once (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a small run: 0.5b only, one round")
    p.add_argument("--cold", action="store_true", help="drop the page cache before each run (root only); default: input left cached")
    p.add_argument("--copy-sync", choices=["system", "file"], default="system",
                   help="the baseline's sync: 'system' (cp SRC DST && sync, the default) or 'file' (sync DST: "
                        "an fsync of the copy alone, unaffected by other processes' dirty data)")
    p.add_argument("--max-load", type=float, default=None, help="before each run, wait (up to 5 min) until the 1-minute "
                   "load average is at most this (for shared machines)")
    p.add_argument("--huge", action="store_true", help="run the larger-than-RAM check instead of the benchmark")
    p.add_argument("--huge-preset", default="llama3-70b", help="preset for --huge (default: %(default)s)")
    p.add_argument("--huge-layers", type=int, default=30, help="layers for --huge (default: %(default)s, ~31 GB)")
    p.add_argument("--huge-chunk", default="256KB", help="the small --chunk-size compared against (default: %(default)s)")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="CSV, SVG and table (default: %(default)s)")
    p.add_argument("--cache", type=Path, default=BENCH_DIR / "cache", help="synthetic checkpoints (default: %(default)s)")
    p.add_argument("--work-dir", type=Path, default=None, help="where outputs and copies go (default: CACHE/work)")
    p.add_argument("--resynth", action="store_true", help="synthesize the checkpoints again even if cached")
    sub = p.add_subparsers(dest="command")
    cmp_parser = sub.add_parser("compare", help="compare two safetensors files tensor by tensor, in bounded memory")
    cmp_parser.add_argument("first", type=Path)
    cmp_parser.add_argument("second", type=Path)
    args = p.parse_args()

    if args.command == "compare":
        problems, count, compared = compare_files(args.first, args.second)
        print(f"{count} tensors, {compared / GB:.2f} GB compared: " + ("equal" if not problems else "DIFFERENT"))
        for problem in problems[:20]:
            print("  " + problem)
        sys.exit(0 if not problems else 2)

    global COPY_SYNC
    COPY_SYNC = args.copy_sync
    binary = args.binary.resolve()
    if not os.access(binary, os.X_OK):
        fail(f"{binary} not found: build it (cmake --preset release && cmake --build --preset release) or pass --binary")
    for other in filter(None, args.also.split(",")):
        if not os.access(other, os.X_OK):
            fail(f"--also {other}: not an executable")
    check_gnu_time()
    if args.cold and os.geteuid() != 0:
        fail("--cold drops the page cache, which needs root")
    if args.quick:
        args.models, args.reps = "0.5b", 1
    if args.reps < 1:
        fail("--reps must be at least 1")
    args.cache = args.cache.resolve()
    args.work_dir = (args.work_dir or args.cache / "work").resolve()
    args.out = args.out.resolve()
    try:
        (huge_check if args.huge else main_benchmark)(args, binary)
    except KeyboardInterrupt:
        fail("interrupted")
    finally:
        if args.work_dir.exists():
            for leftover in args.work_dir.glob("*.safetensors"):
                remove(leftover)


if __name__ == "__main__":
    main()
