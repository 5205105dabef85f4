"""``fastnn demo``: train, prune, deploy and check an MLP on the bundled digits."""
import os
import time

import numpy as np

from fastnn._table import format_table
from fastnn.datasets import train_test_split
from fastnn.pruning import prune_until, report, sparsity

DEMO_EPOCHS = 30
DEMO_MAX_DROP = 0.01
DEMO_STEP = 0.2
DEMO_FINE_TUNE_EPOCHS = 3


def add_parser(commands):
    """Add the ``demo`` subcommand to `commands`."""
    demo = commands.add_parser(
        "demo", help="train, prune, deploy and check an MLP on the bundled digits",
        description="Train an MLP on the bundled digits, prune it within a 1-point accuracy "
                    "budget, deploy it, print the compression report, save the model and "
                    "engine, and check that the saved engine predicts as the model does.")
    demo.add_argument("--out", default="fastnn-demo",
                      help="folder for the saved files (default: ./fastnn-demo)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the weights (default 0)")
    demo.set_defaults(func=run)


def _comparison(dense, pruned, dense_bytes, pruned_bytes):
    """Dense beside pruned: size, nonzeros, FLOPs, accuracy and latency."""
    d, p = dense.to_dict(), pruned.to_dict()

    def ratio(a, b):
        return f"{a / b:.2f}x" if b else "-"

    rows = [("", "dense", "pruned", "dense/pruned")]
    rows.append(("sparsity", f"{d['total']['sparsity']:.1%}", f"{p['total']['sparsity']:.1%}",
                 ""))
    for key, name in (("nonzeros", "nonzero parameters"),
                      ("bytes_deployed", "size as deployed (bytes)"),
                      ("flops_effective", "FLOPs per sample")):
        a, b = d["total"][key], p["total"][key]
        rows.append((name, f"{a:,}", f"{b:,}", ratio(a, b)))
    rows.append(("model file (bytes)", f"{dense_bytes:,}", f"{pruned_bytes:,}",
                 ratio(dense_bytes, pruned_bytes)))
    rows.append(("test accuracy", f"{d['accuracy']:.2%}", f"{p['accuracy']:.2%}",
                 f"{(p['accuracy'] - d['accuracy']) * 100:+.2f} pt"))
    for key in d:
        if key.startswith("latency_us_batch_"):
            batch = key.rsplit("_", 1)[1]
            rows.append((f"latency, batch {batch} (us)", f"{d[key]:.1f}", f"{p[key]:.1f}",
                         ratio(d[key], p[key])))
    return format_table(rows, "lrrr")


def run(args):
    from fastnn import experiments
    from fastnn.deployment import deploy
    from fastnn.engine import load_engine

    start = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    X_train, X_test, y_train, y_test = experiments.digits_split()
    X_fit, X_val, y_fit, y_val = train_test_split(X_train, y_train, test_size=0.25,
                                                  random_state=1, stratify=True)
    print(f"digits: 8x8 images of 0-9, {len(X_fit)} to train, {len(X_val)} to validate the "
          f"pruning, {len(X_test)} to test")

    print("\n[1/5] train")
    model = experiments.digits_mlp(seed=args.seed)
    model.summary()
    model.fit(X_fit, y_fit, epochs=DEMO_EPOCHS, batch_size=32, verbose=1)
    print(f"test accuracy: {model.evaluate(X_test, y_test)['accuracy']:.2%}")

    print(f"\n[2/5] prune by magnitude, {DEMO_STEP:.0%} of the remaining weights per step, "
          f"{DEMO_FINE_TUNE_EPOCHS} epochs of fine-tuning each, while the validation "
          f"accuracy stays within {DEMO_MAX_DROP * 100:g} point of the dense model's")
    pruned, _ = prune_until(model, X_val, y_val, max_metric_drop=DEMO_MAX_DROP, step=DEMO_STEP,
                            X_train=X_fit, y_train=y_fit,
                            fine_tune_epochs=DEMO_FINE_TUNE_EPOCHS, verbose=1)
    print(f"kept sparsity {sparsity(pruned):.1%}")

    print("\n[3/5] deploy and compare")
    engine = deploy(pruned)
    print("the pruned model, layer by layer:")
    print(report(pruned))
    paths = {name: os.path.join(args.out, name) for name in
             ("dense-model.safetensors", "model.safetensors", "engine.safetensors")}
    model.save(paths["dense-model.safetensors"])
    pruned.save(paths["model.safetensors"])
    engine.save(paths["engine.safetensors"])
    sizes = {name: os.path.getsize(path) for name, path in paths.items()}
    print("\ndense beside pruned, on the test images:")
    print(_comparison(report(model, X_test, y_test), report(pruned, X_test, y_test),
                      sizes["dense-model.safetensors"], sizes["model.safetensors"]))

    print(f"\n[4/5] saved to {args.out}")
    for name, path in paths.items():
        print(f"  {path}  {sizes[name]:,} bytes")

    print("\n[5/5] reload the engine and check its predictions")
    loaded = load_engine(paths["engine.safetensors"])
    from_file, in_memory = loaded.predict(X_test), engine.predict(X_test)
    from_model = pruned.predict(X_test)
    exact = np.array_equal(from_file, in_memory)
    agree = float(np.mean(np.argmax(in_memory, axis=1) == np.argmax(from_model, axis=1)))
    close = np.allclose(in_memory, from_model, rtol=1e-4, atol=1e-6)
    gap = float(np.max(np.abs(in_memory.astype(np.float64) - from_model)))
    print(f"  engine file vs engine in memory: {'identical' if exact else 'DIFFERENT'}")
    print(f"  engine vs model: argmax agreement {agree:.2%}, largest difference {gap:.2g}, "
          f"allclose(rtol=1e-4, atol=1e-6) {'yes' if close else 'NO'}")
    ok = exact and agree == 1.0 and close
    print(f"  {'predictions match' if ok else 'FAILED: predictions differ'}")
    print(f"\ndone in {time.perf_counter() - start:.1f} s")
    return 0 if ok else 1
