"""``fastnn convert``: ONNX files to fastnn model files and back."""
import os

from fastnn.cli.data import check_out
from fastnn.cli.errors import UsageError
from fastnn.cli.models import load_model_or_engine, read_onnx


def add_parser(commands):
    """Add the ``convert`` subcommand to `commands`."""
    convert = commands.add_parser(
        "convert", help="convert between ONNX and fastnn files",
        description="Convert by extension: an .onnx network to a fastnn model file "
                    "(.safetensors, compiled with the loss its output suggests, ready for "
                    "'fastnn prune'), or a fastnn model or engine file to .onnx.")
    convert.add_argument("src", help=".onnx, or a fastnn model or engine .safetensors file")
    convert.add_argument("dst", help=".safetensors or .onnx file to write")
    convert.add_argument("--opset", type=int, default=None,
                         help="ONNX opset to write (default 17)")
    convert.add_argument("--matmul", action="store_true",
                         help="write MatMul + Add instead of Gemm (for ONNX Runtime's "
                              "dynamic quantizer)")
    convert.add_argument("--sparse", action="store_true",
                         help="store pruned weight matrices as sparse initializers")
    convert.set_defaults(func=run)


def run(args):
    src_ext = os.path.splitext(args.src)[1].lower()
    if src_ext == ".onnx":
        check_out(args.dst, (".safetensors",))
        model = read_onnx(args.src)
        model.save(args.dst)
        what = f"{len(model.layers)} layers, {model.count_params()} parameters"
    else:
        check_out(args.dst, (".onnx",))
        from fastnn.interop import to_onnx

        model, engine = load_model_or_engine(args.src)
        try:
            to_onnx(model if model is not None else engine, args.dst, opset=args.opset,
                    matmul=args.matmul, sparse=args.sparse)
        except (ValueError, ImportError) as exc:  # a bad --opset, a layer ONNX cannot hold
            raise UsageError(f"cannot write {args.dst}: {exc}") from None
        what = "model" if model is not None else "engine"
    print(f"converted {args.src} ({what}) to {args.dst} ({os.path.getsize(args.dst)} bytes)")
    return 0
