"""``python -m app.center.simulator --host 127.0.0.1 --port P [--seed S] [--population N]`` (ER-3, EN-3)."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.center.simulator.population import DEFAULT_POPULATION_SIZE, DEFAULT_SEED
from app.center.simulator.server import run_simulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m app.center.simulator", description="Run the Shokai center simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port (printed at start)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--population", type=int, default=DEFAULT_POPULATION_SIZE)
    parser.add_argument("--tls-cert", type=Path, help="server certificate (PEM); enables TLS")
    parser.add_argument("--tls-key", type=Path, help="server private key (PEM)")
    parser.add_argument("--tls-client-ca", type=Path, help="CA for client certificates; enables mutual TLS")
    args = parser.parse_args(argv)
    run_simulator(
        args.host,
        args.port,
        args.seed,
        args.population,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
    )


if __name__ == "__main__":
    main()
