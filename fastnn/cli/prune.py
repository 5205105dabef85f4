"""``fastnn prune``: prune a model by magnitude and/or hidden units, with fine-tuning."""
import os

from fastnn.cli.args import fraction, non_negative_int, positive_int
from fastnn.cli.data import check_out, read_data
from fastnn.cli.errors import UsageError
from fastnn.cli.models import accuracy_metric, evaluate_line, load_model_file
from fastnn.datasets import train_test_split
from fastnn.pruning import CRITERIA, prune_magnitude, prune_neurons, prune_until, report, sparsity


def add_parser(commands):
    """Add the ``prune`` subcommand to `commands`."""
    prune = commands.add_parser(
        "prune", help="prune a model by magnitude and/or hidden units, with fine-tuning",
        description="Prune a model: --sparsity zeroes that fraction of the weights (smallest "
                    "magnitudes first) and fine-tunes; --max-drop prunes step by step while "
                    "the validation accuracy (or loss) stays within the budget; --neurons "
                    "first removes that fraction of every hidden layer's units. Classification "
                    "labels must be the indices 0..k-1 the model predicts.")
    prune.add_argument("model", help="model file")
    prune.add_argument("--data", required=True, help=".npz or .csv file with X and y")
    how = prune.add_mutually_exclusive_group()
    how.add_argument("--sparsity", type=fraction(),
                     help="fraction of weights to zero, in [0, 1)")
    how.add_argument("--max-drop", type=fraction(high_open=False),
                     help="largest allowed fall of the validation accuracy (rise of the loss "
                          "for regression)")
    prune.add_argument("--neurons", type=fraction(),
                       help="fraction of each hidden layer's units to remove")
    prune.add_argument("--criterion", choices=CRITERIA, default="l2",
                       help="which units --neurons removes (default l2)")
    prune.add_argument("--step", type=fraction(low_open=True), default=0.2,
                       help="with --max-drop: fraction of the remaining weights pruned per "
                            "step (default 0.2)")
    prune.add_argument("--epochs", type=non_negative_int, default=2,
                       help="fine-tuning epochs after each pruning (default 2)")
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
    check_out(args.out)
    model = load_model_file(args.model)
    if model.loss is None:
        raise UsageError(f"{args.model}: the model has no training configuration (loss), "
                         f"which fine-tuning needs")
    X, y = read_data(args.data, args.label)
    try:
        X_train, X_val, y_train, y_val = train_test_split(
            X, y, test_size=args.validation_split, random_state=args.seed)
    except ValueError as exc:  # too few samples for the split
        raise UsageError(f"{args.data}: {exc}") from None
    print(f"data: {len(X_train)} samples to fine-tune on, {len(X_val)} to score "
          f"(--validation-split {args.validation_split})")
    metric = accuracy_metric(model)
    try:
        before = model.evaluate(X_val, y_val)
    except ValueError as exc:
        hint = ("; class labels must be the indices 0..k-1 the model predicts"
                if "labels must lie" in str(exc) else "")
        raise UsageError(f"{args.data} does not fit {args.model}: {exc}{hint}") from None
    print(f"before: sparsity {sparsity(model):.3f}, {model.count_params()} parameters, "
          f"{evaluate_line(before)}")

    def fine_tune(m):
        if args.epochs:
            m.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)

    def drop(result):
        if metric == "loss":
            return result["loss"] - before["loss"]
        return before[metric] - result[metric]

    if args.neurons:
        needs_data = args.criterion != "l2"
        model = prune_neurons(model, args.neurons, criterion=args.criterion,
                              X=X_train if needs_data else None)
        fine_tune(model)
        print(f"removed {args.neurons:.0%} of the hidden units ({args.criterion}): "
              f"{model.count_params()} parameters, "
              f"{evaluate_line(model.evaluate(X_val, y_val))}")
    if args.sparsity is not None:
        prune_magnitude(model, args.sparsity)
        fine_tune(model)
    elif args.max_drop is not None:
        budget = args.max_drop - drop(model.evaluate(X_val, y_val))
        if budget < 0:
            print(f"no budget left for weight pruning: the {metric} already fell by more "
                  f"than {args.max_drop}")
        else:
            print(f"pruning by magnitude in steps of {args.step:.0%} while the {metric} "
                  f"stays within {args.max_drop} of the start:")
            model, _ = prune_until(model, X_val, y_val, max_metric_drop=budget, metric=metric,
                                   step=args.step, X_train=X_train, y_train=y_train,
                                   fine_tune_epochs=args.epochs, batch_size=args.batch_size,
                                   verbose=1)
    after = model.evaluate(X_val, y_val)
    print(f"after: sparsity {sparsity(model):.3f}, {model.count_params()} parameters, "
          f"{evaluate_line(after)}")
    print(report(model, X_val, y_val))
    model.save(args.out)
    print(f"saved the pruned model to {args.out} ({os.path.getsize(args.out)} bytes)")
    return 0
