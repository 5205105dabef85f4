"""``fastnn bench``: latency and throughput of the deployed model."""
import time

import numpy as np

import fastnn
from fastnn._table import format_table
from fastnn.cli.args import int_list, positive_int
from fastnn.cli.models import load_model_or_engine


def add_parser(commands):
    """Add the ``bench`` subcommand to `commands`."""
    bench = commands.add_parser(
        "bench", help="latency and throughput of the deployed model",
        description="Deploy a model (or load an engine file) and time predict on random "
                    "inputs: median and 99th-percentile latency and throughput per batch "
                    "size.")
    bench.add_argument("model", help="model or engine file")
    bench.add_argument("--batch", type=int_list(allow_empty=False), default=[1, 32, 256],
                       help="batch sizes, comma-separated (default 1,32,256)")
    bench.add_argument("--threads", type=positive_int,
                       help="kernel threads (default: fastnn's setting; BLAS keeps its own)")
    bench.add_argument("--repeat", type=positive_int, default=100,
                       help="timed calls per batch size (default 100)")
    bench.set_defaults(func=run)


def _latencies(engine, X, repeat):
    """Seconds per call of ``engine.predict(X)``, after a short warm-up."""
    out = engine.predict(X)
    for _ in range(3):
        engine.predict(X, out=out)
    times = np.empty(repeat)
    for i in range(repeat):
        start = time.perf_counter()
        engine.predict(X, out=out)
        times[i] = time.perf_counter() - start
    return times


def run(args):
    from fastnn.deployment import deploy

    model, engine = load_model_or_engine(args.model)
    source = "engine file"
    if model is not None:
        engine, source = deploy(model), "model, deployed"
    print(f"{engine!r} ({source})")
    for i, entry in enumerate(engine.layout()):
        storage = entry.get("storage", entry["kind"])
        density = f", density {entry['density']:.3f}" if "density" in entry else ""
        print(f"  layer {i}: {entry['shape'][0]} -> {entry['shape'][1]} "
              f"{entry['activation']}, {storage}{density}")
    rng = np.random.default_rng(0)
    if args.threads is not None:
        fastnn.set_num_threads(args.threads)
    try:
        print(f"threads: {fastnn.get_num_threads()}, {args.repeat} calls per batch size")
        rows = [("batch", "p50 (us)", "p99 (us)", "samples/s")]
        for batch in args.batch:
            X = rng.standard_normal((batch, engine.n_in)).astype(engine.dtype)
            times = _latencies(engine, X, args.repeat)
            p50, p99 = np.percentile(times, [50, 99]) * 1e6
            rows.append((str(batch), f"{p50:.1f}", f"{p99:.1f}",
                         f"{batch * args.repeat / times.sum():,.0f}"))
    finally:
        if args.threads is not None:
            fastnn.set_num_threads(None)
    print(format_table(rows, "r"))
    return 0
