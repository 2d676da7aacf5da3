"""Helpers for the center-link tests (ER-3, RC-1, EN-3): pick people, build requests, run the simulator."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.center.interface import CenterInquiryRequest, CenterSubject
from app.center.simulator.population import Population, SyntheticPerson

REPO_ROOT = Path(__file__).resolve().parents[2]
MEMBER = "0009"


def person(
    population: Population, predicate: Callable[[SyntheticPerson], bool], nth: int = 0
) -> SyntheticPerson:
    matches = (p for p in population if predicate(p))
    for _ in range(nth):
        next(matches)
    return next(matches)


def with_transactions(p: SyntheticPerson) -> bool:
    return p.has_transactions and bool(p.loans)


def without_transactions(p: SyntheticPerson) -> bool:
    return not p.has_transactions


def inquiry_body(
    subject: SyntheticPerson | tuple[str, str],
    *,
    purpose: str = "new_credit",
    key: str = "key-1",
    member_code: str = MEMBER,
    branch_code: str = "001",
    terminal_id: str = "T001-01",
    operator_ref: str = "op-1001",
) -> dict[str, Any]:
    if isinstance(subject, SyntheticPerson):
        name_kana, birth_date = subject.name_kana, subject.birth_date.isoformat()
    else:
        name_kana, birth_date = subject
    return {
        "member_code": member_code,
        "branch_code": branch_code,
        "terminal_id": terminal_id,
        "operator_ref": operator_ref,
        "purpose": purpose,
        "subject": {"name_kana": name_kana, "birth_date": birth_date},
        "idempotency_key": key,
    }


def inquiry_request(subject: SyntheticPerson | tuple[str, str], **kwargs: Any) -> CenterInquiryRequest:
    body = inquiry_body(subject, **kwargs)
    return CenterInquiryRequest(**{**body, "subject": CenterSubject(**body["subject"])})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def simulator_process(*extra_args: str, scheme: str = "http", verify: Any = True) -> Iterator[str]:
    """``shokai center-sim`` on a free port; yields its base URL and always kills it."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "center-sim", "--port", str(port), *extra_args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"{scheme}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the simulator exited: {process.communicate()[0]}")
            try:
                if httpx.get(f"{base}/center/v1/_sim/stats", timeout=1, verify=verify).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start listening within 30 s")
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def make_pki(directory: Path) -> Pki:
    """A throwaway CA with a server certificate for 127.0.0.1 and a client certificate (EN-3 tests)."""
    now = datetime.now(UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def certificate(
        subject: str,
        subject_key: ec.EllipticCurvePrivateKey,
        issuer: str,
        issuer_key: ec.EllipticCurvePrivateKey,
        *,
        is_ca: bool,
        usage: x509.ObjectIdentifier | None = None,
        ip: str | None = None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(subject_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        )
        if is_ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False
            )
        else:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
            )
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if ip is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    def write(
        path: Path, cert: x509.Certificate | None = None, private: ec.EllipticCurvePrivateKey | None = None
    ) -> Path:
        if cert is not None:
            path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if private is not None:
            path.write_bytes(
                private.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        return path

    ca_key, server_key, client_key, other_key = key(), key(), key(), key()
    ca = certificate("Shokai test center CA", ca_key, "Shokai test center CA", ca_key, is_ca=True)
    other_ca = certificate("Some other CA", other_key, "Some other CA", other_key, is_ca=True)
    server = certificate(
        "center.test",
        server_key,
        "Shokai test center CA",
        ca_key,
        is_ca=False,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        ip="127.0.0.1",
    )
    client = certificate(
        "member 0009 gateway",
        client_key,
        "Shokai test center CA",
        ca_key,
        is_ca=False,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    return Pki(
        ca=write(directory / "ca.pem", ca),
        server_cert=write(directory / "server.pem", server),
        server_key=write(directory / "server.key", private=server_key),
        client_cert=write(directory / "client.pem", client),
        client_key=write(directory / "client.key", private=client_key),
        other_ca=write(directory / "other-ca.pem", other_ca),
    )
