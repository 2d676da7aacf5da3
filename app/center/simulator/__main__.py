"""``python -m app.center.simulator [options]``: the same command as ``shokai center-sim [options]``
(ER-3, EN-3), for a machine where the ``shokai`` script is not on the PATH. One set of options, the CLI's."""

from __future__ import annotations

import sys

from app.cli import cli


def main(argv: list[str] | None = None) -> None:
    cli(["center-sim", *(sys.argv[1:] if argv is None else argv)], prog_name="python -m app.center.simulator")


if __name__ == "__main__":
    main()
