"""Run the speed suites and print, per benchmark group, each contender's median and its ratio to fastnn.

    python bench/report.py                          every bench/bench_*.py
    python bench/report.py --suite dense,training   bench/bench_dense.py and bench/bench_training.py
    python bench/report.py --quick                  fewer rounds, FASTNN_BENCH_SAMPLES=8192 unless set
    python bench/report.py --markdown               Markdown tables (for the README)
    python bench/report.py --from-json FILE         tables from a saved pytest-benchmark JSON
    python bench/report.py --save-json FILE         keep the JSON of this run

fastnn or peer, by test name: take the test's function name, drop the ``test_`` prefix
and any ``[parameters]``, and split the rest at ``_``. If one of the words is
``fastnn`` the test is a fastnn entry (test_forward_fastnn[32], test_fastnn[relu-2],
test_epoch_fastnn); every other test is a peer (test_forward_numpy[32],
test_numpy[relu], test_epoch_torch[2threads]). A contender is labelled by its test name
without ``test_``.

Ratios: within a group, every other entry's median time is divided by every fastnn
median time (one column per fastnn entry), so a ratio above 1 means that fastnn entry
was faster. Numbers a benchmark records in ``extra_info`` under a key ending in
``_ratio`` (busy/quiet latency, say) get a column of their own. All medians of a table
come from one pytest-benchmark run: the run this script made, or the one that wrote the
JSON given with --from-json.
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
QUICK_SAMPLES = "8192"
QUICK_ARGS = ["--benchmark-min-rounds=3", "--benchmark-max-time=0.1"]
VERSIONED = ["numpy", "scipy", "torch", "onnxruntime", "pytest-benchmark"]


@dataclass
class Entry:
    label: str
    fastnn: bool
    median: float  # seconds
    samples: int | None = None  # samples per call, when the benchmark records them
    extra_ratios: dict | None = None  # extra_info entries whose key ends in "_ratio"


def is_fastnn(name):
    """True for a fastnn entry: ``fastnn`` is a ``_``-separated word of the test's name."""
    base = name.split("[", 1)[0].removeprefix("test_")
    return "fastnn" in base.split("_")


def label(name):
    return name.removeprefix("test_")


def groups(data):
    """{group: [Entry, ...]} from a pytest-benchmark JSON dict, fastnn entries first."""
    out = {}
    for bench in data["benchmarks"]:
        name, extra = bench["name"], bench.get("extra_info", {})
        entry = Entry(label(name), is_fastnn(name), bench["stats"]["median"],
                      extra.get("samples"),
                      {k: v for k, v in extra.items() if k.endswith("_ratio")} or None)
        out.setdefault(bench["group"] or "(no group)", []).append(entry)
    for entries in out.values():
        entries.sort(key=lambda e: (not e.fastnn, e.median))
    return out


def ratios(entries):
    """{(label, fastnn label): median / fastnn median} for one group: every entry against
    every fastnn entry but itself."""
    return {(e.label, ref.label): e.median / ref.median
            for e in entries for ref in entries if ref.fastnn and ref is not e}


def _unit(seconds):
    for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= scale:
            return scale, name
    return 1e-9, "ns"


def _number(x):
    """Three significant digits below 100, whole numbers above, never an exponent."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def table(entries):
    """(column headers, rows of strings) for one group."""
    refs = [e for e in entries if e.fastnn]
    scale, unit = _unit(min(e.median for e in entries))
    throughput = any(e.samples for e in entries)
    extra = sorted({k for e in entries for k in (e.extra_ratios or {})})
    r = ratios(entries)
    headers = ["contender", f"median ({unit})"]
    headers += ["samples/s"] if throughput else []
    headers += [f"vs {ref.label}" for ref in refs]
    headers += extra
    rows = []
    for e in entries:
        row = [e.label, _number(e.median / scale)]
        if throughput:
            row.append(f"{e.samples / e.median:,.0f}" if e.samples else "")
        row += ["" if e is ref else f"{r[e.label, ref.label]:.2f}x" for ref in refs]
        row += [f"{(e.extra_ratios or {})[k]:.2f}x" if k in (e.extra_ratios or {}) else ""
                for k in extra]
        rows.append(row)
    return headers, rows


def format_text(title, headers, rows):
    widths = [max(len(c) for c in col) for col in zip(headers, *rows)]

    def line(cells):  # first column left-aligned, numbers right-aligned
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([title, line(headers), line(["-" * w for w in widths])]
                     + [line(row) for row in rows])


def format_markdown(title, headers, rows):
    lines = [f"**{title}**", "", "| " + " | ".join(headers) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report(data, markdown=False):
    """The tables of every group, with a note where a group has no fastnn entry."""
    fmt = format_markdown if markdown else format_text
    parts = []
    for title, entries in groups(data).items():
        text = fmt(title, *table(entries))
        if not any(e.fastnn for e in entries):
            text += "\n(no fastnn entry in this group: no ratios)"
        parts.append(text)
    return "\n\n".join(parts)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine():
    """The machine and software the numbers are measured on, as an ordered dict of strings."""
    cores = str(os.cpu_count())
    if hasattr(os, "sched_getaffinity"):
        cores += f" ({len(os.sched_getaffinity(0))} usable)"
    info = {"cpu": _cpu_model(), "cores": cores, "os": platform.platform(),
            "python": platform.python_version()}
    for package in VERSIONED:
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        import fastnn
        info["fastnn"] = f"{fastnn.__version__}, {fastnn.get_num_threads()} threads"
    except ImportError as exc:
        info["fastnn"] = f"not importable ({exc})"
    if hasattr(os, "getloadavg"):
        info["load average before run"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["date"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return info


def machine_from_json(data):
    """The header saved by this script, else what pytest-benchmark records itself."""
    if "fastnn_machine" in data:
        return data["fastnn_machine"]
    m = data.get("machine_info", {})
    cpu = m.get("cpu", {})
    return {"cpu": cpu.get("brand_raw") or m.get("processor", "?"),
            "cores": str(cpu.get("count", "?")),
            "os": f"{m.get('system', '?')} {m.get('release', '')}".strip(),
            "python": m.get("python_version", "?"), "date": data.get("datetime", "?")}


def format_header(info, markdown=False):
    if markdown:
        return "\n".join(f"- {key}: {value}" for key, value in info.items())
    width = max(map(len, info))
    return "\n".join(f"{key:>{width}}: {value}" for key, value in info.items())


def suites():
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def run(names, quick, json_path):
    """Run the suites under pytest-benchmark, its output to stderr; the exit code."""
    env = dict(os.environ)
    args = ["--benchmark-only", f"--benchmark-json={json_path}", "--benchmark-quiet",
            "-q", "-p", "no:cacheprovider"]
    if quick:
        env.setdefault("FASTNN_BENCH_SAMPLES", QUICK_SAMPLES)
        args += QUICK_ARGS
    files = [str(BENCH_DIR / f"bench_{name}.py") for name in names]
    cmd = [sys.executable, "-m", "pytest", *files, *args]
    return subprocess.run(cmd, cwd=BENCH_DIR.parent, env=env, stdout=sys.stderr).returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--suite", help="comma-separated suites (default: all of "
                        + ",".join(suites()) + ")")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and smaller epochs")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--from-json", metavar="FILE", help="report a saved JSON, run nothing")
    parser.add_argument("--save-json", metavar="FILE", help="keep this run's JSON in FILE")
    args = parser.parse_args(argv)

    code = 0
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
        info = machine_from_json(data)
    else:
        names = args.suite.split(",") if args.suite else suites()
        unknown = sorted(set(names) - set(suites()))
        if unknown:
            parser.error(f"unknown suite(s) {', '.join(unknown)}; valid: {', '.join(suites())}")
        info = describe_machine()
        if args.quick:
            samples = os.environ.get("FASTNN_BENCH_SAMPLES", QUICK_SAMPLES)
            info["mode"] = f"quick ({' '.join(QUICK_ARGS)}, FASTNN_BENCH_SAMPLES={samples})"
        with tempfile.TemporaryDirectory() as tmp:
            json_path = Path(args.save_json or Path(tmp) / "bench.json")
            code = run(names, args.quick, json_path)
            if not json_path.exists():
                print(f"pytest exited with {code} and wrote no benchmark JSON", file=sys.stderr)
                return code or 1
            data = json.loads(json_path.read_text())
            data["fastnn_machine"] = info
            if args.save_json:
                json_path.write_text(json.dumps(data, indent=2))

    print(format_header(info, args.markdown))
    print()
    print(report(data, args.markdown) if data["benchmarks"] else "no benchmarks were run")
    if code:
        print(f"\npytest exited with {code}: some benchmarks failed or were not run",
              file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
