"""The gateway refuses to start on a center link that is unsafe to send inquiries over (EN-3, ER-3).

Checked in ``app.main.build_center_link``, which both ``shokai serve`` and the production factory go
through: a center off this machine must be https with the gateway's client certificate (mutual TLS),
and the outbox lease must outlast the slowest call the link can make.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.center.http_adapter import HttpCenterLink, InsecureCenterLink
from app.clock import SystemClock
from app.config import Settings
from app.main import build_center_link, build_context
from tests.center.support import make_pki


def settings_for(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("center_url", "message"),
    [
        ("http://center.example.jp", "is http://, not https://"),
        ("http://10.0.0.8:8443", "is http://, not https://"),
        # Names that only look local can point anywhere.
        ("http://127.example.com", "is http://, not https://"),
        ("http://127.0.0.1.nip.io.example.net", "is http://, not https://"),
        ("http://localhost.example.com", "is http://, not https://"),
        ("https://center.example.jp", "needs a client certificate for mutual TLS"),
    ],
)
def test_a_center_off_this_machine_needs_mutual_tls(tmp_path: Path, center_url: str, message: str) -> None:
    with pytest.raises(InsecureCenterLink, match=message):
        build_center_link(settings_for(tmp_path, center_url=center_url), SystemClock())


def test_the_gateway_does_not_start_on_a_plain_http_center(tmp_path: Path) -> None:
    with pytest.raises(InsecureCenterLink):
        build_context(settings_for(tmp_path, center_url="http://center.example.jp"), create_keys=True)


@pytest.mark.parametrize(
    ("center_url", "extra"),
    [
        # The simulator as its own process, or a tunnel on this host: nothing crosses the network.
        ("http://127.0.0.1:8100", {}),
        ("http://127.8.9.10:8100", {}),
        ("http://localhost:8100", {}),
        ("http://[::1]:8100", {}),
        # A center that prescribes another method than client certificates: TLS is still required.
        ("https://center.example.jp", {"center_mutual_tls_required": False}),
    ],
)
async def test_links_that_may_be_used(tmp_path: Path, center_url: str, extra: dict[str, object]) -> None:
    link, simulator = build_center_link(settings_for(tmp_path, center_url=center_url, **extra), SystemClock())
    assert isinstance(link, HttpCenterLink)
    assert simulator is None
    await link.aclose()


async def test_mutual_tls_with_the_client_certificate_is_accepted(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    settings = settings_for(
        tmp_path,
        center_url="https://center.example.jp",
        center_tls_client_cert=pki.client_cert,
        center_tls_client_key=pki.client_key,
        center_tls_ca_bundle=pki.ca,
    )
    link, _ = build_center_link(settings, SystemClock())
    assert isinstance(link, HttpCenterLink)
    await link.aclose()


async def test_a_lease_shorter_than_twice_the_slowest_call_refuses_to_start(tmp_path: Path) -> None:
    # 3 attempts × (3 + 5 + 10 s) + 0.2 + 0.4 s of backoff = 54.6 s; a delivery may start with half its
    # lease left (it renews the lease only then), so the 120 s default covers it.
    link, _ = build_center_link(settings_for(tmp_path), SystemClock())
    assert isinstance(link, HttpCenterLink)
    assert link.settings.slowest_call_seconds == pytest.approx(54.6)
    await link.aclose()
    with pytest.raises(ValueError, match=r"LEASE_SECONDS \(100\) must be at least 109.2: twice the slowest"):
        build_center_link(settings_for(tmp_path, outbox_claim_lease_seconds=100), SystemClock())
    # 4 attempts × 18 s + 0.2 + 0.4 + 0.8 s = 73.4 s: 120 s is not twice that.
    with pytest.raises(ValueError, match="slowest center call"):
        build_center_link(settings_for(tmp_path, center_max_attempts=4), SystemClock())
