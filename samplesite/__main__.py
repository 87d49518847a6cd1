"""``python -m samplesite [--port N] [--synthetic N]``: serve the sample site until Ctrl-C."""

from __future__ import annotations

import argparse

from samplesite.server import serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m samplesite", description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--synthetic", type=int, default=0, help="extra generated stories")
    args = parser.parse_args(argv)
    serve_forever(args.port, synthetic=args.synthetic)


if __name__ == "__main__":
    main()
