"""The one ``shokai`` command (typer): serve, demo, db, audit, keys."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import shutil
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from app.audit.ledger import Actor, record
from app.center.interface import DetachedCenterLink
from app.config import Settings
from app.errors import DomainError

if TYPE_CHECKING:
    from app.crypto.keyring import Keyring
    from app.lists.models import DailyList

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
reconcile_cli = typer.Typer(help="Reconciliation with the center's inquiry record", no_args_is_help=True)
cli.add_typer(reconcile_cli, name="reconcile")
governance_cli = typer.Typer(help="Access-rights governance (AC-2…AC-5)", no_args_is_help=True)
cli.add_typer(governance_cli, name="governance")
retention_cli = typer.Typer(help="Retention and destruction (RT-1, RT-2)", no_args_is_help=True)
cli.add_typer(retention_cli, name="retention")

DataDir = Annotated[Path, typer.Option("--data-dir", help="Instance directory (SQLite file, key file)")]


def _settings(data_dir: Path | None) -> Settings:
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings


def _keyring(settings: Settings) -> Keyring:
    """The instance's keys as its gateways open them (never created here)."""
    from app.clock import SystemClock
    from app.crypto.keyring import open_keyring

    return open_keyring(
        key_file=settings.resolved_key_file(), env_keys=settings.keys, clock=SystemClock(), create=False
    )


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
        downgrade(url, keyring=ctx.keyring)
    upgrade(url, keyring=ctx.keyring)

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
    from app import serving
    from app.migrate import upgrade
    from app.panel.security import loopback_demo_settings

    settings = _settings(data_dir)
    if settings.is_sqlite and not (data_dir / "keys.json").exists() and not settings.keys:
        typer.echo(f"no instance in {data_dir}; run `shokai demo --data-dir {data_dir}` first", err=True)
        raise typer.Exit(2)
    if settings.is_sqlite and workers > 1:
        typer.echo("several workers need PostgreSQL (SHOKAI_DATABASE_URL)", err=True)
        raise typer.Exit(2)
    upgrade(settings.resolved_database_url(), keyring=lambda: _keyring(settings))
    settings = loopback_demo_settings(settings, host=host, environ=os.environ)
    typer.echo(f"Shokai on http://{host}:{port}/  (API docs: http://{host}:{port}/api/v1/docs)")
    typer.echo(f"Confirmer panel: http://{host}:{port}/panel/  (demo users and terminals: `shokai logins`)")
    if workers > 1:
        os.environ["SHOKAI_DATA_DIR"] = str(data_dir)
        serving.run(
            "app.main:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    else:
        from app.main import create_app

        serving.run(create_app(settings), host=host, port=port, log_level="warning")


@cli.command()
def gateway(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "0.0.0.0",  # noqa: S104
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(envvar="WEB_CONCURRENCY", help="uvicorn worker processes")] = 1,
) -> None:
    """The production server (the image's command): settings from SHOKAI_*, migrations run separately.

    Behind the TLS proxy: forwarded headers are honoured (uvicorn's FORWARDED_ALLOW_IPS says from whom).
    """
    from app import serving

    serving.run(
        "app.main:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
    )


def _list_line(daily: DailyList, created: bool) -> str:
    counted = " (no inquiries)" if daily.no_inquiries else f" ({daily.inquiries_total} inquiries)"
    return (
        f"  {daily.branch_code} {daily.kind:<7} seq {daily.sequence:>5} v{daily.version} "
        f"{'created' if created else 'already there'}{counted}"
    )


@lists_cli.command("generate")
def lists_generate(
    day: Annotated[str, typer.Option("--date", help="Business date YYYY-MM-DD (Asia/Tokyo)")],
    branch: Annotated[str | None, typer.Option("--branch", help="Only this branch")] = None,
    data_dir: DataDir = Path(".shokai"),
) -> None:
    """Generate the lists of a day (idempotent); changed days get supplementary versions.

    Progress goes to stderr, one line per branch; the lists made go to stdout. Exit 2 on a bad date,
    an unknown branch or a refusal (e.g. a day that has not begun)."""

    from app.clock import check_business_date
    from app.lists import service as list_service
    from app.main import build_context

    try:
        business_date = check_business_date(date.fromisoformat(day))
    except ValueError as exc:
        typer.echo(f"bad --date {day!r}: {exc}", err=True)
        raise typer.Exit(2) from None

    ctx = build_context(_settings(data_dir), center=DetachedCenterLink())

    async def _generate() -> list[str]:
        try:
            if branch is None:
                async with ctx.db.read_session() as session:
                    codes = await list_service.branches_open_on(session, business_date)
            else:
                codes = [branch]
            lines: list[str] = []
            reported: list[str] = []

            def progress(code: str, results: list[list_service.GeneratedList]) -> None:
                reported.append(code)
                created = sum(1 for r in results if r.created)
                where = f"[{len(reported)}/{len(codes)}] branch {code}"
                typer.echo(f"{where}: {len(results)} list(s), {created} created", err=True)
                lines.extend(_list_line(r.daily, r.created) for r in results)

            # One generation for the day (its branches in batches), reporting each branch as it is done.
            await list_service.generate(
                ctx, day=business_date, actor=_cli_actor(), branch_code=branch, on_branch=progress
            )
            return lines
        finally:
            await ctx.db.dispose()

    try:
        lines = asyncio.run(_generate())
    except DomainError as exc:
        where = f" (branch {branch})" if branch else ""
        typer.echo(f"lists not generated{where}: {exc.code}: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    for line in lines:
        typer.echo(line)
    typer.echo(f"{len(lines)} list(s) for {business_date.isoformat()}")


@governance_cli.command("sweep")
def governance_sweep(data_dir: DataDir = Path(".shokai")) -> None:
    """Lapse stale requests, end expired rights, apply due HR events, close due campaigns, expire stale
    inquiry drafts (idempotent)."""
    from app.governance import sweep
    from app.main import build_context

    ctx = build_context(_settings(data_dir), center=DetachedCenterLink())

    async def _sweep() -> sweep.SweepResult:
        try:
            return await sweep.run_once(ctx, actor=_cli_actor())
        finally:
            await ctx.db.dispose()

    result = asyncio.run(_sweep())
    for name, value in vars(result).items():
        typer.echo(f"  {name}: {value}")


@reconcile_cli.command("center")
def reconcile_center(
    date_from: Annotated[str, typer.Option("--from", help="First business date YYYY-MM-DD (Asia/Tokyo)")],
    date_to: Annotated[str, typer.Option("--to", help="Last business date YYYY-MM-DD (Asia/Tokyo)")],
    record_file: Annotated[
        Path | None,
        typer.Option("--file", help="The center's inquiry record as NDJSON or CSV, instead of fetching it"),
    ] = None,
    data_dir: DataDir = Path(".shokai"),
) -> None:
    """Reconcile the center's inquiry record against the gateway (RC-1, RC-2).

    Exit 0 when clean, 1 when there are findings (a CRITICAL one when an inquiry bypassed the gateway).
    Without --file the record is fetched over the center link (SHOKAI_CENTER_URL).
    """
    from datetime import date as date_type

    from app.center.record_file import file_sha256, read_record_file
    from app.main import build_context
    from app.reconciliation import service as reconciliation

    settings = _settings(data_dir)
    if record_file is not None and not record_file.is_file():
        typer.echo(f"no such file: {record_file}", err=True)
        raise typer.Exit(2)
    # A file needs no center; fetching needs the configured one (or the embedded simulator's record).
    ctx = build_context(settings, center=DetachedCenterLink() if record_file is not None else None)

    def progress(stage: str, count: int) -> None:
        typer.echo(f"  {stage}: {count:,} center entries", err=True)

    async def _reconcile() -> dict[str, object]:
        try:
            run = await reconciliation.reconcile_center(
                ctx,
                actor=_cli_actor(),
                date_from=date_type.fromisoformat(date_from),
                date_to=date_type.fromisoformat(date_to),
                entries=read_record_file(record_file) if record_file is not None else None,
                source="file" if record_file is not None else "center",
                source_sha256=file_sha256(record_file) if record_file is not None else None,
                progress=progress,
            )
            view = await reconciliation.run_view(ctx, run_id=run.id)
            return {
                "id": run.id,
                "clean": run.clean,
                "center_entries": run.center_entries,
                "gateway_entries": run.gateway_entries,
                "findings": run.finding_counts,
                "alerts": [f"{a.severity.upper()} {a.code} ({a.count})" for a in view.alerts],
                "unmatched_center": [f.center_inquiry_id for f in view.findings["unmatched_center"]],
            }
        finally:
            await ctx.db.dispose()

    try:
        result = asyncio.run(_reconcile())
    except DomainError as exc:
        typer.echo(f"reconciliation failed: {exc.code}: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    if not result["clean"]:
        raise typer.Exit(1)


@cli.command("center-sim")
def center_sim(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one, printed at start)")] = 8100,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the synthetic population [default: the bundled one]")
    ] = None,
    population: Annotated[
        int | None, typer.Option(help="Number of synthetic people [default: 12000]")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM); enables TLS")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Server private key (PEM)")] = None,
    tls_client_ca: Annotated[
        Path | None, typer.Option(help="CA of client certificates; enables mutual TLS (EN-3)")
    ] = None,
) -> None:
    """Run the bundled center simulator as its own process (point SHOKAI_CENTER_URL at it)."""
    from app.center.simulator import run_simulator
    from app.center.simulator.population import DEFAULT_POPULATION_SIZE, DEFAULT_SEED

    run_simulator(
        host,
        port,
        DEFAULT_SEED if seed is None else seed,
        DEFAULT_POPULATION_SIZE if population is None else population,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_client_ca=tls_client_ca,
    )


@db_cli.command("upgrade")
def db_upgrade(data_dir: DataDir = Path(".shokai"), revision: str = "head") -> None:
    """Apply migrations up to REVISION."""
    from app.migrate import upgrade

    settings = _settings(data_dir)
    upgrade(settings.resolved_database_url(), revision, keyring=lambda: _keyring(settings))
    typer.echo("database upgraded")


@db_cli.command("downgrade")
def db_downgrade(data_dir: DataDir = Path(".shokai"), revision: str = "base") -> None:
    """Revert migrations down to REVISION."""
    from app.migrate import downgrade

    settings = _settings(data_dir)
    downgrade(settings.resolved_database_url(), revision, keyring=lambda: _keyring(settings))
    typer.echo("database downgraded")


@audit_cli.command("verify")
def audit_verify(
    data_dir: DataDir = Path(".shokai"),
    export: Annotated[
        Path | None, typer.Option("--export", help="Verify this exported range offline (no database)")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Signed checkpoint(s) JSON (with --export)")
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="Checkpoint public key: PEM or `shokai keys public` JSON"),
    ] = None,
    require_anchored: Annotated[
        bool,
        typer.Option(
            "--require-anchored",
            help="With --export: fail (exit 1) if events follow the last matching signed checkpoint",
        ),
    ] = False,
    require_complete: Annotated[
        bool,
        typer.Option(
            "--require-complete",
            help="With --export: fail (exit 1) if a checkpoint given lies past the export's last event "
            "(for an export meant to reach the head: its tail was cut off)",
        ),
    ] = False,
) -> None:
    """Verify the hash chain and signed checkpoints; exit 1 and name the first bad seq if altered.

    With --export, --checkpoint and --public-key: verify an exported range on any machine, without the
    database or the gateway (an auditor's independent check)."""
    if export is not None:
        _verify_offline(
            export,
            checkpoint,
            public_key,
            require_anchored=require_anchored,
            require_complete=require_complete,
        )
        return
    from app.audit.service import checkpoint_rule, verify_ledger
    from app.main import build_context

    ctx = build_context(_settings(data_dir), center=DetachedCenterLink())

    async def _verify() -> dict[str, object]:
        try:
            report = await verify_ledger(ctx.db, ctx.keyring, checkpoint_rule(ctx.settings))
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


def _verify_offline(
    export: Path,
    checkpoint: Path | None,
    public_key: Path | None,
    *,
    require_anchored: bool = False,
    require_complete: bool = False,
) -> None:
    from app.audit.offline import ExportFormatError, verify_export_file

    if checkpoint is None or public_key is None:
        typer.echo("--export needs --checkpoint and --public-key", err=True)
        raise typer.Exit(2)
    try:
        report = verify_export_file(export, checkpoint, public_key)
    except (OSError, ValueError, ExportFormatError) as exc:
        typer.echo(f"cannot read the inputs: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(report.as_dict(), indent=2))
    if not report.ok:
        typer.echo(f"EXPORT NOT INTACT: first bad seq {report.first_bad_seq} ({report.reason})", err=True)
        raise typer.Exit(1)
    if report.unanchored is not None:
        low, high = report.unanchored
        typer.echo(
            f"warning: events seq {low}-{high} come after the last matching signed checkpoint "
            f"(seq {report.anchored_through}): they are not anchored; verify them against a later checkpoint",
            err=True,
        )
        if require_anchored:
            raise typer.Exit(1)
    if report.checkpoints_beyond:
        typer.echo(
            f"warning: checkpoints were signed past the export's last event (seq {report.last_seq}): "
            f"{', '.join(map(str, report.checkpoints_beyond))}. The ledger went on beyond this export; "
            "if it was meant to reach the head, its tail is missing",
            err=True,
        )
        if require_complete:
            raise typer.Exit(1)


@audit_cli.command("export")
def audit_export(
    since: Annotated[
        str | None, typer.Option("--from", help="RFC 3339 time or YYYY-MM-DD (JST midnight); default: first")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="RFC 3339 time or YYYY-MM-DD (exclusive, JST); default: head")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="ndjson | csv")] = "ndjson",
    out: Annotated[Path | None, typer.Option("--out", help="Output file (default: standard output)")] = None,
    data_dir: DataDir = Path(".shokai"),
) -> None:
    """Export a contiguous range of ledger events, streamed in constant memory; the export is recorded."""
    from app.audit.export import export_events, seq_range
    from app.main import build_context

    if fmt not in ("ndjson", "csv"):
        typer.echo("--format is ndjson or csv", err=True)
        raise typer.Exit(2)
    bounds = (_instant(since), _instant(until))
    ctx = build_context(_settings(data_dir), center=DetachedCenterLink())

    async def _export() -> dict[str, object]:
        try:
            found = await seq_range(ctx.db, since=bounds[0], until=bounds[1])
            # Fail closed: the export is on the record before a single event leaves the database; if
            # the ledger cannot take that record, nothing is written.
            try:
                async with ctx.db.session() as session:
                    record(
                        session,
                        actor=_cli_actor(),
                        action="audit.export_started",
                        object_type="ledger",
                        details={
                            "from": bounds[0].isoformat() if bounds[0] else None,
                            "to": bounds[1].isoformat() if bounds[1] else None,
                            "first_seq": found[0] if found else None,
                            "last_seq": found[1] if found else None,
                            "format": fmt,
                        },
                    )
                    await session.commit()
            except (DomainError, SQLAlchemyError) as exc:
                code = exc.code if isinstance(exc, DomainError) else type(exc).__name__
                return {"aborted": f"the export could not be recorded in the ledger ({code})"}
            if found is None:
                return {"count": 0}
            target = out.open("wb") if out is not None else sys.stdout.buffer
            try:
                summary = await export_events(ctx.db, target, first_seq=found[0], last_seq=found[1], fmt=fmt)
            finally:
                if out is not None:
                    target.close()
                else:
                    target.flush()
            result: dict[str, object] = {
                "first_seq": summary.first_seq,
                "last_seq": summary.last_seq,
                "count": summary.count,
                "format": fmt,
                "sha256": summary.sha256,
            }
            try:
                async with ctx.db.session() as session:
                    record(
                        session,
                        actor=_cli_actor(),
                        action="audit.exported",
                        object_type="ledger",
                        details=result,
                    )
                    await session.commit()
            except DomainError as exc:
                typer.echo(f"warning: this export could not be recorded in the ledger ({exc.code})", err=True)
            return result
        finally:
            await ctx.db.dispose()

    outcome = asyncio.run(_export())
    if "aborted" in outcome:
        typer.echo(f"EXPORT ABORTED: {outcome['aborted']}; nothing was written", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(outcome), err=True)


@audit_cli.command("checkpoints")
def audit_checkpoints(
    out: Annotated[Path | None, typer.Option("--out", help="Output file (default: standard output)")] = None,
    data_dir: DataDir = Path(".shokai"),
) -> None:
    """Write every signed checkpoint as JSON, for `audit verify --export ... --checkpoint`."""
    from app.audit.service import list_checkpoints
    from app.main import build_context

    ctx = build_context(_settings(data_dir), center=DetachedCenterLink())

    async def _checkpoints() -> list[dict[str, object]]:
        try:
            items: list[dict[str, object]] = []
            async with ctx.db.session() as session:
                after = 0
                while rows := await list_checkpoints(session, after_seq=after, limit=1000):
                    items.extend(
                        {
                            "seq": r.seq,
                            "hash": r.hash,
                            "at": r.at,
                            "key_id": r.key_id,
                            "signature": r.signature,
                        }
                        for r in rows
                    )
                    after = rows[-1].seq
                record(
                    session,
                    actor=_cli_actor(),
                    action="audit.checkpoints_read",
                    object_type="ledger",
                    details={"after_seq": 0, "count": len(items)},
                )
                await session.commit()
            return items
        finally:
            await ctx.db.dispose()

    text = json.dumps({"items": asyncio.run(_checkpoints())}, indent=2)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    else:
        typer.echo(text)


def _instant(value: str | None) -> datetime | None:
    """RFC 3339 with a zone, or a JST business date meaning its midnight."""
    if value is None:
        return None
    from app.clock import TOKYO

    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0, 0), tzinfo=TOKYO)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"not a date or RFC 3339 time: {value}") from exc
    if parsed.tzinfo is None:
        raise typer.BadParameter("a time needs a zone (RFC 3339)")
    return parsed


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

    new_id = asyncio.run(_rotate())
    typer.echo(
        f"{family}: new current key {new_id}; running gateways take it up within "
        f"{ctx.settings.key_file_check_seconds:g} s"
    )


@keys_cli.command("rewrap")
def keys_rewrap(
    data_dir: DataDir = Path(".shokai"),
    wait: Annotated[
        bool, typer.Option("--wait", help="If the rotation is too recent, wait until gateways use it")
    ] = False,
) -> None:
    """Re-wrap every data key under the current key-encryption key (after `keys rotate --family kek`)."""
    from app.crypto.rewrap import RewrapIncomplete, RewrapTooEarly, rewrap_all, rewrap_ready_at
    from app.main import build_context

    ctx = build_context(_settings(data_dir), center=DetachedCenterLink())
    if not ctx.keyring.follows_rotations:
        typer.echo(
            "keys come from SHOKAI_KEYS: gateways take a new KEK only when restarted with it; "
            "restart every gateway before this rewrap, or they cannot open what it moves",
            err=True,
        )

    async def _rewrap() -> int:
        try:
            if wait:
                pause = (rewrap_ready_at(ctx) - ctx.clock.now()).total_seconds()
                if pause > 0:
                    typer.echo(f"waiting {pause:.1f} s for running gateways to take up the new KEK")
                    await asyncio.sleep(pause)
            return await rewrap_all(
                ctx, actor=_cli_actor(), progress=lambda n: typer.echo(f"  re-wrapped {n}")
            )
        finally:
            await ctx.db.dispose()

    try:
        changed = asyncio.run(_rewrap())
    except RewrapTooEarly as exc:
        typer.echo(
            f"{exc.kek_id} is too new: running gateways may still seal under the retired KEK until "
            f"{exc.ready_at.isoformat()}; run again then (or with --wait)",
            err=True,
        )
        raise typer.Exit(2) from exc
    except RewrapIncomplete as exc:
        typer.echo(f"re-wrapped {exc.changed} data keys under {ctx.keyring.current_key_id('kek')}")
        typer.echo(
            f"{len(exc.unreadable)} data keys could not be unwrapped and stay under a retired KEK "
            "(keys.rewrap_failed in the ledger); keep that KEK until they are dealt with:",
            err=True,
        )
        for table, key in exc.unreadable:
            typer.echo(f"  {table} {key}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"re-wrapped {changed} data keys under {ctx.keyring.current_key_id('kek')}")


@keys_cli.command("public")
def keys_public(data_dir: DataDir = Path(".shokai")) -> None:
    """Print the checkpoint-signing public keys (PEM), with until when each retired one could sign, for
    offline verification by auditors."""
    from app.audit.service import public_keys_document

    typer.echo(json.dumps(public_keys_document(_keyring(_settings(data_dir))), indent=2))


@retention_cli.command("reapply")
def retention_reapply(data_dir: DataDir = Path(".shokai")) -> None:
    """After a restore from backup: destroy again what the deletion journal says was destroyed (RT-2).

    The gateway does this itself when it starts; run it before opening a restored database any other way."""
    from app.main import build_context
    from app.retention.journal import JournalUnreadable, journal_path
    from app.retention.service import reapply_journal

    settings = _settings(data_dir)
    ctx = build_context(settings, center=DetachedCenterLink())

    async def _reapply() -> int:
        try:
            return await reapply_journal(ctx)
        finally:
            await ctx.db.dispose()

    try:
        again = asyncio.run(_reapply())
    except JournalUnreadable as error:
        typer.echo(f"REAPPLY STOPPED: {error} ({journal_path(settings)}); nothing was applied", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"journal": str(journal_path(settings)), "destroyed_again": again}))


def main() -> None:
    if shutil.which("shokai") is None and sys.argv and sys.argv[0].endswith("cli.py"):
        sys.argv[0] = "shokai"
    cli()


if __name__ == "__main__":
    main()
