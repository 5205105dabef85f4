"""``fastnn prune``: prune a model by magnitude and/or hidden units, fine-tune, and save it
only when its held-out metric stays within the budget."""
import math
import os
import sys

from fastnn.cli.args import fraction, non_negative_int, positive_int
from fastnn.cli.data import check_out, read_data
from fastnn.cli.errors import UsageError
from fastnn.cli.models import accuracy_metric, evaluate_line, load_model_file
from fastnn.datasets import train_test_split
from fastnn.pruning import CRITERIA, prune_magnitude, prune_neurons, prune_until, report, sparsity

DEFAULT_MAX_DROP = {"accuracy": 0.01, "loss": 0.05}
"""Budgets: accuracy may fall by 0.01; a loss (regression) may rise by 5% of itself."""
FINE_TUNE_UPDATES = 300
"""Default fine-tuning: about this many updates after each pruning, at most 10 epochs."""


def _sparsity(text):
    return "auto" if text == "auto" else fraction()(text)


def add_parser(commands):
    """Add the ``prune`` subcommand to `commands`."""
    prune = commands.add_parser(
        "prune", help="prune a model by magnitude and/or hidden units, with fine-tuning",
        description="Prune a model, fine-tune it, and save it only if its metric on a held-out "
                    "split (accuracy for a classifier, the loss otherwise) stays within "
                    "--max-drop of the unpruned model's; otherwise exit with status 1 (unless "
                    "--force). --sparsity zeroes that fraction of the weights (smallest "
                    "magnitudes first), --sparsity auto prunes step by step while the budget "
                    "holds; --neurons first removes that fraction of every hidden layer's units.")
    prune.add_argument("model", help="model file")
    prune.add_argument("--data", required=True, help=".npz or .csv file with X and y")
    prune.add_argument("--sparsity", type=_sparsity,
                       help="fraction of weights to zero, in [0, 1), or auto")
    prune.add_argument("--max-drop", type=fraction(high_open=False),
                       help="largest allowed fall of the held-out accuracy (default 0.01), or "
                            "relative rise of the loss for regression (default 0.05 = 5%%); "
                            "alone, it means --sparsity auto")
    prune.add_argument("--force", action="store_true",
                       help="save even when the metric fell by more than --max-drop")
    prune.add_argument("--neurons", type=fraction(),
                       help="fraction of each hidden layer's units to remove")
    prune.add_argument("--criterion", choices=CRITERIA, default="l2",
                       help="which units --neurons removes (default l2)")
    prune.add_argument("--step", type=fraction(low_open=True), default=0.2,
                       help="with --sparsity auto: fraction of the remaining weights pruned per "
                            "step (default 0.2)")
    prune.add_argument("--fine-tune-epochs", "--epochs", dest="epochs", type=non_negative_int,
                       help=f"fine-tuning epochs after each pruning (default: about "
                            f"{FINE_TUNE_UPDATES} updates, at most 10 epochs)")
    prune.add_argument("--batch-size", type=positive_int, default=32, help="default 32")
    prune.add_argument("--label", default="label", help="target column of a CSV (default label)")
    prune.add_argument("--validation-split", type=fraction(low_open=True), default=0.2,
                       help="fraction held out to score the pruning (default 0.2)")
    prune.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    prune.add_argument("--out", required=True, help="model file to write")
    prune.set_defaults(func=run)


def run(args):
    if args.sparsity is None and args.max_drop is None and args.neurons is None:
        raise UsageError("prune needs --sparsity, --max-drop or --neurons")
    if args.sparsity is None and args.neurons is None:
        args.sparsity = "auto"
    check_out(args.out)
    model = load_model_file(args.model)
    if model.loss is None:
        raise UsageError(f"{args.model}: the model has no training configuration (loss), "
                         f"which fine-tuning needs")
    X, y, _ = read_data(args.data, args.label, schema=model.table)
    try:
        X_train, X_val, y_train, y_val = train_test_split(
            X, y, test_size=args.validation_split, random_state=args.seed)
    except ValueError as exc:  # too few samples for the split
        raise UsageError(f"{args.data}: {exc}") from None
    metric = accuracy_metric(model)
    max_drop = DEFAULT_MAX_DROP[metric] if args.max_drop is None else args.max_drop
    if args.epochs is None:
        batches = math.ceil(len(X_train) / args.batch_size)
        args.epochs = max(1, min(10, math.ceil(FINE_TUNE_UPDATES / batches)))
    print(f"data: {len(X_train)} rows to fine-tune on; the metric is scored on the other "
          f"{len(X_val)} rows, a random {args.validation_split:.0%} held out with seed "
          f"{args.seed} (--validation-split, --seed)")
    print(f"fine-tuning {args.epochs} epoch(s) after each pruning (--fine-tune-epochs)")
    try:
        before = model.evaluate(X_val, y_val)
    except ValueError as exc:
        raise UsageError(f"{args.data} does not fit {args.model}: {exc}") from None
    budget_text = (f"a fall of the accuracy by at most {max_drop}" if metric != "loss" else
                   f"a rise of the loss by at most {max_drop:.0%}")
    print(f"before: sparsity {sparsity(model):.3f}, {model.count_params()} parameters, "
          f"{evaluate_line(before)}; budget: {budget_text} (--max-drop)")

    def fine_tune(m):
        if args.epochs:
            m.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)

    def drop(result):
        """The fall of the metric, in --max-drop's units (relative for a loss)."""
        if metric == "loss":
            return (result["loss"] - before["loss"]) / max(abs(before["loss"]), 1e-12)
        return before[metric] - result[metric]

    if args.neurons:
        needs_data = args.criterion != "l2"
        model = prune_neurons(model, args.neurons, criterion=args.criterion,
                              X=X_train if needs_data else None)
        fine_tune(model)
        print(f"removed {args.neurons:.0%} of the hidden units ({args.criterion}): "
              f"{model.count_params()} parameters, "
              f"{evaluate_line(model.evaluate(X_val, y_val))}")
    if args.sparsity == "auto":
        left = max_drop - drop(model.evaluate(X_val, y_val))
        if left < 0:
            print(f"no budget left for weight pruning: the {metric} already moved by more "
                  f"than {max_drop}")
        else:
            absolute = left * abs(before["loss"]) if metric == "loss" else left
            print(f"pruning by magnitude in steps of {args.step:.0%} while the {metric} "
                  f"stays within the budget:")
            model, _ = prune_until(model, X_val, y_val, max_metric_drop=absolute, metric=metric,
                                   step=args.step, X_train=X_train, y_train=y_train,
                                   fine_tune_epochs=args.epochs, batch_size=args.batch_size,
                                   verbose=1)
    elif args.sparsity is not None:
        prune_magnitude(model, args.sparsity)
        fine_tune(model)
    after = model.evaluate(X_val, y_val)
    print(f"after: sparsity {sparsity(model):.3f}, {model.count_params()} parameters, "
          f"{evaluate_line(after)}")
    print(report(model, X_val, y_val))
    fell = drop(after)
    if fell > max_drop + 1e-12:
        what = (f"the accuracy fell from {before[metric]:.4f} to {after[metric]:.4f}"
                if metric != "loss" else
                f"the loss rose from {before['loss']:.4g} to {after['loss']:.4g} "
                f"({fell:.1%})")
        if not args.force:
            print(f"not saved: on the held-out rows {what}, more than --max-drop {max_drop} "
                  f"allows; prune less, fine-tune longer, or pass --force", file=sys.stderr)
            return 1
        print(f"warning: {what}, more than --max-drop {max_drop}; saved anyway (--force)",
              file=sys.stderr)
    model.save(args.out)
    print(f"saved the pruned model to {args.out} ({os.path.getsize(args.out)} bytes)")
    return 0
