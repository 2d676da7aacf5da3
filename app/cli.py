"""The one ``shokai`` command (typer): serve, demo, db, audit, keys."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.audit.ledger import Actor, record
from app.center.interface import DetachedCenterLink
from app.config import Settings
from app.errors import DomainError

cli = typer.Typer(
    help="Shokai — credit-bureau inquiry gateway",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Database migrations", no_args_is_help=True)
audit_cli = typer.Typer(help="The audit ledger", no_args_is_help=True)
keys_cli = typer.Typer(help="Key material", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(keys_cli, name="keys")
lists_cli = typer.Typer(help="Daily subject and count lists", no_args_is_help=True)
cli.add_typer(lists_cli, name="lists")

DataDir = Annotated[Path, typer.Option("--data-dir", help="Instance directory (SQLite file, key file)")]


def _settings(data_dir: Path | None) -> Settings:
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings


def _cli_actor() -> Actor:
    return Actor(id=f"cli:{getpass.getuser()}", roles=("operator_console",))


@cli.command()
def demo(
    data_dir: DataDir = Path(".shokai"),
    credentials_out: Annotated[
        Path, typer.Option("--credentials-out", help="Where to write the demo logins (JSON)")
    ] = Path(".shokai/demo-logins.json"),
    reset: Annotated[
        bool, typer.Option("--reset", help="PostgreSQL: drop every table first (demo databases only)")
    ] = False,
) -> None:
    """Create (or re-create) an embedded instance with demo data and write its logins to a file."""
    from app.demo import seed_demo
    from app.main import build_context
    from app.migrate import downgrade, upgrade

    settings = _settings(data_dir).model_copy(update={"cookie_secure": False})
    if not settings.database_url:
        for name in ("shokai.db", "shokai.db-wal", "shokai.db-shm", "keys.json"):
            (data_dir / name).unlink(missing_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # the SQLite file holds personal data and the key file sits beside it
    ctx = build_context(settings, create_keys=True, center=DetachedCenterLink())
    url = settings.resolved_database_url()
    if settings.database_url and reset:
        downgrade(url)
    upgrade(url)

    async def _seed() -> None:
        try:
            credentials = await seed_demo(ctx)
            credentials.write(credentials_out)
        finally:
            await ctx.db.dispose()

    asyncio.run(_seed())
    typer.echo(f"demo instance ready in {data_dir.resolve()}")
    typer.echo(f"demo logins written to {credentials_out.resolve()} (mode 600)")


@cli.command()
def logins(
    credentials: Annotated[Path, typer.Option("--credentials", help="The file `shokai demo` wrote")] = Path(
        ".shokai/demo-logins.json"
    ),
) -> None:
    """Print the demo logins (users, passwords, terminals) of an embedded demo instance."""
    data = json.loads(credentials.read_text(encoding="utf-8"))
    typer.echo(f"Demo logins ({credentials}):")
    typer.echo(f"  {'user':<10} {'password':<18} {'roles':<20} {'branches':<10} name")
    for entry in data["users"]:
        typer.echo(
            f"  {entry['id']:<10} {entry['password']:<18} {','.join(entry['roles']):<20} "
            f"{','.join(entry['branch_codes']) or '-':<10} {entry['name']}"
        )
    typer.echo("  terminals: " + ", ".join(f"{t['id']} ({t['branch_code']})" for t in data["terminals"]))
    typer.echo("  terminal keys and service-account secrets are in the file")


@cli.command()
def serve(
    data_dir: DataDir = Path(".shokai"),
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes (PostgreSQL only)")] = 1,
) -> None:
    """Serve an instance (SQLite in DATA_DIR, or SHOKAI_DATABASE_URL)."""
    import uvicorn

    from app.migrate import upgrade

    settings = _settings(data_dir)
    if settings.is_sqlite and not (data_dir / "keys.json").exists() and not settings.keys:
        typer.echo(f"no instance in {data_dir}; run `shokai demo --data-dir {data_dir}` first", err=True)
        raise typer.Exit(2)
    if settings.is_sqlite and workers > 1:
        typer.echo("several workers need PostgreSQL (SHOKAI_DATABASE_URL)", err=True)
        raise typer.Exit(2)
    upgrade(settings.resolved_database_url())
    if host in ("127.0.0.1", "localhost", "::1") and "SHOKAI_COOKIE_SECURE" not in os.environ:
        # Plain HTTP on loopback is the demo; everywhere else the panel cookie stays Secure.
        settings = settings.model_copy(update={"cookie_secure": False})
    typer.echo(f"Shokai on http://{host}:{port}/  (API docs: http://{host}:{port}/api/v1/docs)")
    if workers > 1:
        os.environ["SHOKAI_DATA_DIR"] = str(data_dir)
        uvicorn.run(
            "app.main:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    else:
        from app.main import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@lists_cli.command("generate")
def lists_generate(
    day: Annotated[str, typer.Option("--date", help="Business date YYYY-MM-DD (Asia/Tokyo)")],
    branch: Annotated[str | None, typer.Option("--branch", help="Only this branch")] = None,
    data_dir: DataDir = Path(".shokai"),
) -> None:
    """Generate the lists of a day (idempotent); changed days get supplementary versions."""
    from datetime import date as date_type

    from app.lists import service as list_service
    from app.main import build_context

    ctx = build_context(_settings(data_dir), center=DetachedCenterLink())

    async def _generate() -> list[str]:
        try:
            results = await list_service.generate(
                ctx, day=date_type.fromisoformat(day), actor=_cli_actor(), branch_code=branch
            )
            return [
                f"  {r.daily.branch_code} {r.daily.kind:<7} seq {r.daily.sequence:>5} v{r.daily.version} "
                f"{'created' if r.created else 'already there'}"
                f"{' (no inquiries)' if r.daily.no_inquiries else f' ({r.daily.inquiries_total} inquiries)'}"
                for r in results
            ]
        finally:
            await ctx.db.dispose()

    lines = asyncio.run(_generate())
    for line in lines:
        typer.echo(line)
    typer.echo(f"{len(lines)} list(s) for {day}")


@cli.command("center-sim")
def center_sim(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8100,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic population")] = 20261124,
    population: Annotated[int, typer.Option(help="Number of synthetic people")] = 12000,
) -> None:
    """Run the bundled center simulator as its own process (point SHOKAI_CENTER_URL at it)."""
    from app.center.simulator import run_simulator

    typer.echo(
        f"center simulator on http://{host}:{port}/center/v1 (seed {seed}, {population} synthetic people)"
    )
    run_simulator(host=host, port=port, seed=seed, population=population)


@db_cli.command("upgrade")
def db_upgrade(data_dir: DataDir = Path(".shokai"), revision: str = "head") -> None:
    """Apply migrations up to REVISION."""
    from app.migrate import upgrade

    upgrade(_settings(data_dir).resolved_database_url(), revision)
    typer.echo("database upgraded")


@db_cli.command("downgrade")
def db_downgrade(data_dir: DataDir = Path(".shokai"), revision: str = "base") -> None:
    """Revert migrations down to REVISION."""
    from app.migrate import downgrade

    downgrade(_settings(data_dir).resolved_database_url(), revision)
    typer.echo("database downgraded")


@audit_cli.command("verify")
def audit_verify(data_dir: DataDir = Path(".shokai")) -> None:
    """Verify the hash chain and signed checkpoints; exit 1 and name the first bad seq if altered."""
    from app.audit.service import verify_ledger
    from app.main import build_context

    ctx = build_context(_settings(data_dir), center=DetachedCenterLink())

    async def _verify() -> dict[str, object]:
        try:
            report = await verify_ledger(ctx.db, ctx.keyring)
            result = report.as_dict()
            # Show the verdict even if recording the read fails (a forged row at head+1 blocks appends).
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
            try:
                async with ctx.db.session() as session:
                    record(
                        session,
                        actor=_cli_actor(),
                        action="audit.verified",
                        object_type="ledger",
                        outcome="success" if report.ok else "failure",
                        details={
                            "checked": report.checked,
                            "first_bad_seq": report.first_bad_seq,
                            "reason": report.reason,
                        },
                    )
                    await session.commit()
            except DomainError as exc:
                typer.echo(
                    f"warning: this verification could not be recorded in the ledger ({exc.code})", err=True
                )
            return result
        finally:
            await ctx.db.dispose()

    result = asyncio.run(_verify())
    if not result["ok"]:
        typer.echo(
            f"LEDGER NOT INTACT: first bad seq {result['first_bad_seq']} ({result['reason']})", err=True
        )
        raise typer.Exit(1)


@keys_cli.command("rotate")
def keys_rotate(
    data_dir: DataDir = Path(".shokai"),
    family: Annotated[str, typer.Option(help="token_signing | checkpoint_signing | kek")] = "token_signing",
) -> None:
    """Add a new current key; the old one stays to verify what it signed (or unwrap what it wrapped)."""
    from app.main import build_context

    ctx = build_context(_settings(data_dir), center=DetachedCenterLink())

    async def _rotate() -> str:
        try:
            new_id = ctx.keyring.rotate(family, now=ctx.clock.now())
            async with ctx.db.session() as session:
                record(
                    session,
                    actor=_cli_actor(),
                    action="keys.rotated",
                    object_type="key_family",
                    object_id=family,
                    details={"new_key_id": new_id},
                )
                await session.commit()
            return new_id
        finally:
            await ctx.db.dispose()

    typer.echo(f"{family}: new current key {asyncio.run(_rotate())}; restart the gateway to use it")


@keys_cli.command("rewrap")
def keys_rewrap(data_dir: DataDir = Path(".shokai")) -> None:
    """Re-wrap every data key under the current key-encryption key (after `keys rotate --family kek`)."""
    from app.inquiry.rewrap import rewrap_all
    from app.main import build_context

    ctx = build_context(_settings(data_dir), center=DetachedCenterLink())

    async def _rewrap() -> int:
        try:
            return await rewrap_all(
                ctx, actor=_cli_actor(), progress=lambda n: typer.echo(f"  re-wrapped {n}")
            )
        finally:
            await ctx.db.dispose()

    typer.echo(f"re-wrapped {asyncio.run(_rewrap())} data keys under {ctx.keyring.current_key_id('kek')}")


@keys_cli.command("public")
def keys_public(data_dir: DataDir = Path(".shokai")) -> None:
    """Print the checkpoint-signing public keys (PEM) for offline verification by auditors."""
    from app.clock import SystemClock
    from app.crypto.keyring import open_keyring, public_key_pem

    settings = _settings(data_dir)
    keyring = open_keyring(
        key_file=settings.resolved_key_file(), env_keys=settings.keys, clock=SystemClock(), create=False
    )
    typer.echo(
        json.dumps({kid: public_key_pem(k) for kid, k in keyring.checkpoint_public_keys().items()}, indent=2)
    )


def main() -> None:
    if shutil.which("shokai") is None and sys.argv and sys.argv[0].endswith("cli.py"):
        sys.argv[0] = "shokai"
    cli()


if __name__ == "__main__":
    main()
