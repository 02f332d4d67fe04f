"""The ``llem`` command: subcommands around the Hydra task app (``python -m llem``)."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from llem.errors import LlemError


def _models(args: argparse.Namespace) -> int:
    from llem.models import BUILTIN_MODELS, model_status, prepare

    if args.action == "prepare":
        if args.name not in BUILTIN_MODELS:
            raise LlemError(f"unknown built-in model '{args.name}'; choose one of {', '.join(BUILTIN_MODELS)}")
        path = prepare(args.name, force=args.force)
        print(f"{args.name} ready in {path}")
        return 0
    table = Table(title="built-in models")
    for column in ("alias", "ready", "description", "path"):
        table.add_column(column)
    for alias, description, ready, path in model_status():
        table.add_row(
            alias, "yes" if ready else "no", description, str(path) if ready else f"llem models prepare {alias}"
        )
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llem",
        description="Measure LLM inference cost. Run experiments with `python -m llem [overrides] [-m]`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="list the built-in models, or prepare one")
    models.add_argument("action", nargs="?", choices=["list", "prepare"], default="list")
    models.add_argument("name", nargs="?", help="alias to prepare (llem models prepare smollm2-135m)")
    models.add_argument("--force", action="store_true", help="prepare again even if ready")
    models.set_defaults(handler=_models)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "action", None) == "prepare" and not args.name:
        parser.error("llem models prepare needs a model alias")
    try:
        sys.exit(args.handler(args))
    except LlemError as err:
        print(f"llem: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
