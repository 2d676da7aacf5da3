"""Running the simulator as its own process: uvicorn behind a small TCP front (ER-3, EN-3).

Why a front: "refuse connections for N seconds" has to be real — a client must get ECONNREFUSED, not
an HTTP error — and uvicorn offers no supported way to stop and restart listening. So uvicorn serves
the app on a private loopback port, and the public port belongs to :class:`TcpFront`, a byte relay on
asyncio streams that can close its listening socket and open it again on the same port:

* ``refuse_for(seconds)`` closes the listening socket at once (new connects are refused by the
  kernel), drops the connections that were open — clients' keep-alive connections included — after a
  short grace that lets the control request's own answer out, and re-listens when the time is up.
  Requests that still come in on an old connection during the grace get a 503 from the middleware.
* ``reopen()`` (``DELETE /_sim/faults``) listens again at once.

The front also terminates TLS when certificates are given, and with a client CA it demands a client
certificate: the mutual TLS of the real center link (EN-3), so the adapter's mTLS path can be tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import uvicorn

from app.center.simulator.app import create_simulator_app, simulator_state
from app.center.simulator.population import DEFAULT_POPULATION_SIZE, DEFAULT_SEED

log = logging.getLogger("shokai.center.simulator")

# Long enough for the answer to "POST /_sim/faults" to leave on its connection before it is dropped.
DROP_GRACE_SECONDS = 0.25
_RELAY_CHUNK = 64 * 1024


class _Relay:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream

    def abort(self) -> None:
        self.client.transport.abort()
        self.upstream.transport.abort()


class TcpFront:
    """Accepts the simulator's public connections and relays them to uvicorn on a loopback port."""

    def __init__(
        self, *, host: str, port: int, upstream_port: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._host = host
        self._port = port
        self._upstream_port = upstream_port
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._relays: set[_Relay] = set()
        self._reopen_timer: asyncio.TimerHandle | None = None
        self._listening_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> int:
        # A port taken at start is a configuration error: fail at once instead of retrying.
        await self._listen(attempts=1)
        return self._port

    async def close(self) -> None:
        self._closed = True
        if self._reopen_timer is not None:
            self._reopen_timer.cancel()
        if self._server is not None:
            self._server.close()
            self._server = None
        for relay in list(self._relays):
            relay.abort()

    def refuse_for(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        if self._server is not None:
            self._server.close()
            self._server = None
        open_now = list(self._relays)
        loop.call_later(DROP_GRACE_SECONDS, _abort_all, open_now)
        if self._reopen_timer is not None:
            self._reopen_timer.cancel()
        self._reopen_timer = loop.call_later(seconds, self.reopen)
        log.warning("refusing connections for %.1f s", seconds)

    def reopen(self) -> None:
        if self._reopen_timer is not None:
            self._reopen_timer.cancel()
            self._reopen_timer = None
        if self._closed or self._server is not None:
            return
        if self._listening_task is None or self._listening_task.done():
            # The port was ours a moment ago; a rebind can still race a lingering socket, so retry a while.
            self._listening_task = asyncio.get_running_loop().create_task(self._listen(attempts=50))

    async def _listen(self, *, attempts: int) -> None:
        for attempt in range(1, attempts + 1):
            try:
                self._server = await asyncio.start_server(
                    self._relay, self._host, self._port, ssl=self._ssl, reuse_address=True, backlog=512
                )
                break
            except OSError:
                if attempt == attempts:
                    raise
                await asyncio.sleep(0.1)
        assert self._server is not None
        self._port = int(self._server.sockets[0].getsockname()[1])
        log.info("accepting connections on %s:%d", self._host, self._port)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            # Accepted in the instant before the listener closed: refuse it like the ones after.
            client_writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        except OSError:
            client_writer.transport.abort()
            return
        relay = _Relay(client_writer, upstream_writer)
        self._relays.add(relay)
        try:
            await asyncio.gather(
                _pump(client_reader, upstream_writer),
                _pump(upstream_reader, client_writer),
            )
        finally:
            self._relays.discard(relay)
            for writer in (client_writer, upstream_writer):
                writer.close()


def _abort_all(relays: list[_Relay]) -> None:
    for relay in relays:
        relay.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_RELAY_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError, ssl.SSLError):
        pass
    finally:
        # Pass the end of this direction on, so the other side finishes too.
        with contextlib.suppress(ConnectionError, OSError, RuntimeError, ssl.SSLError):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


def server_tls_context(*, cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    if client_ca is not None:
        context.load_verify_locations(cafile=str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def serve_simulator(
    host: str = "127.0.0.1",
    port: int = 8765,
    seed: int = DEFAULT_SEED,
    population: int = DEFAULT_POPULATION_SIZE,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    tls_client_ca: Path | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM. ``on_ready`` gets the base URL once connections are accepted."""
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("TLS needs both a certificate and a key")
    if tls_client_ca is not None and tls_cert is None:
        raise ValueError("a client CA needs TLS (certificate and key)")
    app = create_simulator_app(seed=seed, population_size=population)
    internal = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    internal.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    internal.bind(("127.0.0.1", 0))
    internal.setblocking(False)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        # Timed-out requests sleep for a long time on purpose; they must not hold up a shutdown.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[internal]))
    while not server.started:
        if serving.done():
            await serving
            return
        await asyncio.sleep(0.01)
    ssl_context = (
        server_tls_context(cert=tls_cert, key=tls_key, client_ca=tls_client_ca)
        if tls_cert is not None and tls_key is not None
        else None
    )
    front = TcpFront(
        host=host, port=port, upstream_port=int(internal.getsockname()[1]), ssl_context=ssl_context
    )
    bound = await front.start()
    simulator_state(app).gate.attach(front)
    url = f"{'https' if ssl_context else 'http'}://{host}:{bound}"
    if on_ready is not None:
        on_ready(url)
    try:
        await serving
    finally:
        await front.close()


def run_simulator(
    host: str = "127.0.0.1",
    port: int = 8765,
    seed: int = DEFAULT_SEED,
    population: int = DEFAULT_POPULATION_SIZE,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    tls_client_ca: Path | None = None,
) -> None:
    """Blocking entry point for ``python -m app.center.simulator`` and ``shokai center-sim``."""

    def announce(url: str) -> None:
        print(f"center simulator listening on {url} (seed {seed}, {population} people)", flush=True)

    asyncio.run(
        serve_simulator(
            host,
            port,
            seed,
            population,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_client_ca=tls_client_ca,
            on_ready=announce,
        )
    )
