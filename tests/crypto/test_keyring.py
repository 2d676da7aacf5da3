"""EN-2 key material: a 0600 key file or read-only environment keys, versioned and rotatable; pseudonyms
(LG-1) are keyed, stable and reveal nothing; retired checkpoint keys keep old checkpoints verifiable."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.clock import ManualClock
from app.crypto.keyring import Keyring, KeyringError, new_key_document, open_keyring


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "keys.json"


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask of 0 would make an ordinary open() world-readable; the key file must not depend on it."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def file_keyring(key_file: Path, clock: ManualClock, *, create: bool = True) -> Keyring:
    return open_keyring(key_file=key_file, env_keys=None, clock=clock, create=create)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# -- the key file ---------------------------------------------------------------------------------------


def test_key_file_is_created_owner_only(key_file: Path, clock: ManualClock, permissive_umask: None) -> None:
    keyring = file_keyring(key_file, clock)
    assert key_file.exists()
    assert mode_of(key_file) == 0o600
    document = json.loads(key_file.read_text(encoding="utf-8"))
    for family in ("kek", "token_signing", "checkpoint_signing", "pseudonym", "blind_index"):
        assert document[family]["current"] == keyring.current_key_id(family)
    # No stray temporary files are left next to it; only the (empty, owner-only) lock file that
    # serialises changes by several processes.
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["keys.json", "keys.json.lock"]
    lock = key_file.with_name("keys.json.lock")
    assert mode_of(lock) == 0o600 and lock.stat().st_size == 0


def test_reopening_reads_the_same_keys_and_does_not_regenerate(key_file: Path, clock: ManualClock) -> None:
    first = file_keyring(key_file, clock)
    second = file_keyring(key_file, clock, create=True)
    assert raw(second.token_signing_key().public_key) == raw(first.token_signing_key().public_key)
    assert second.kek() == first.kek()
    assert second.pseudonym("op001") == first.pseudonym("op001")


def test_missing_key_file_without_create_is_a_clear_error(key_file: Path, clock: ManualClock) -> None:
    with pytest.raises(KeyringError, match="no key material"):
        file_keyring(key_file, clock, create=False)
    assert not key_file.exists()


OTHERS_CAN_READ = [0o640, 0o604, 0o644, 0o660, 0o606, 0o666, 0o610, 0o601]


@pytest.mark.parametrize("mode", OTHERS_CAN_READ, ids=[f"{m:o}" for m in OTHERS_CAN_READ])
def test_key_file_readable_by_others_is_refused(key_file: Path, clock: ManualClock, mode: int) -> None:
    file_keyring(key_file, clock)
    content = key_file.read_text(encoding="utf-8")
    key_file.chmod(mode)
    for create in (False, True):
        with pytest.raises(KeyringError) as refused:
            file_keyring(key_file, clock, create=create)
        message = str(refused.value)
        assert "readable by others" in message
        assert "chmod 600" in message
        assert str(key_file) in message
        assert json.loads(content)["kek"]["keys"]["kek-1"]["secret"] not in message
    # Refusing is all it does: the file is neither rewritten nor re-permissioned behind the operator's back.
    assert key_file.read_text(encoding="utf-8") == content
    assert mode_of(key_file) == mode


@pytest.mark.parametrize("mode", [0o400, 0o600, 0o700], ids=["400", "600", "700"])
def test_owner_only_key_file_is_accepted(key_file: Path, clock: ManualClock, mode: int) -> None:
    first = file_keyring(key_file, clock)
    key_file.chmod(mode)
    assert file_keyring(key_file, clock, create=False).kek() == first.kek()


# -- keys from the environment --------------------------------------------------------------------------


def test_environment_keys_are_used_and_are_read_only(key_file: Path, clock: ManualClock) -> None:
    document = new_key_document(clock.now())
    keyring = open_keyring(key_file=key_file, env_keys=json.dumps(document), clock=clock, create=True)
    # The environment wins; no key file is written alongside it.
    assert not key_file.exists()
    _kid, kek = keyring.kek()
    assert kek == Keyring(json.loads(json.dumps(document))).kek()[1]

    for family in ("token_signing", "checkpoint_signing", "kek"):
        before = keyring.key_ids(family)
        with pytest.raises(KeyringError, match="read-only"):
            keyring.rotate(family, now=clock.now())
        assert keyring.key_ids(family) == before
        assert keyring.current_key_id(family) == before[0]
    assert not key_file.exists()


def test_malformed_environment_keys_are_refused(key_file: Path, clock: ManualClock) -> None:
    document = new_key_document(clock.now())
    del document["token_signing"]
    with pytest.raises(KeyringError, match="token_signing"):
        open_keyring(key_file=key_file, env_keys=json.dumps(document), clock=clock, create=True)


@pytest.mark.parametrize(
    ("family", "secret"),
    [
        ("kek", "not base64!!"),
        ("kek", base64.b64encode(bytes(16)).decode()),  # AES-128: would wrap every data key more weakly
        ("kek", base64.b64encode(bytes(20)).decode()),  # no AES key at all: every inquiry was a 500
        ("blind_index", ""),  # an empty HMAC key: anyone could compute who an inquiry is about
        ("pseudonym", ""),
        ("token_signing", base64.b64encode(bytes(31)).decode()),
        ("checkpoint_signing", None),
        ("kek", "ｱｲｳ"),
    ],
)
def test_key_material_that_cannot_be_a_key_is_refused_at_start_naming_no_value(
    key_file: Path, clock: ManualClock, family: str, secret: str | None
) -> None:
    document = new_key_document(clock.now())
    entry = document[family]["keys"][document[family]["current"]]
    entry["secret"] = secret
    with pytest.raises(KeyringError, match=f"{family} key") as refused:
        open_keyring(key_file=key_file, env_keys=json.dumps(document), clock=clock, create=True)
    if secret:
        assert secret not in str(refused.value)


def test_a_key_entry_or_family_of_the_wrong_shape_is_refused(key_file: Path, clock: ManualClock) -> None:
    for broken in ({"kek": {"current": ["kek-1"], "keys": {}}}, {"kek": {"current": "kek-1", "keys": []}}):
        document = {**new_key_document(clock.now()), **broken}
        with pytest.raises(KeyringError, match="'kek' is missing or has no current key"):
            open_keyring(key_file=key_file, env_keys=json.dumps(document), clock=clock, create=True)
    document = new_key_document(clock.now())
    document["pseudonym"]["keys"]["ps-1"] = "c2VjcmV0"
    with pytest.raises(KeyringError, match="pseudonym key 'ps-1'"):
        open_keyring(key_file=key_file, env_keys=json.dumps(document), clock=clock, create=True)
    with pytest.raises(KeyringError, match="missing or has no current key"):
        open_keyring(key_file=key_file, env_keys="[]", clock=clock, create=True)


# -- rotation -------------------------------------------------------------------------------------------


def test_rotation_keeps_old_ids_and_makes_a_new_current(
    key_file: Path, clock: ManualClock, permissive_umask: None
) -> None:
    keyring = file_keyring(key_file, clock)
    old_signing = keyring.token_signing_key()
    old_kek_id, old_kek = keyring.kek()

    rotated_at = clock.advance(days=30)
    new_id = keyring.rotate("token_signing", now=rotated_at)
    assert new_id != old_signing.key_id
    assert keyring.current_key_id("token_signing") == new_id
    assert keyring.key_ids("token_signing") == [old_signing.key_id, new_id]
    assert keyring.token_signing_key().key_id == new_id
    assert raw(keyring.token_signing_key().public_key) != raw(old_signing.public_key)

    newest = keyring.rotate("token_signing", now=clock.advance(days=30))
    assert keyring.key_ids("token_signing") == [old_signing.key_id, new_id, newest]
    assert len(set(keyring.key_ids("token_signing"))) == 3

    new_kek_id = keyring.rotate("kek", now=clock.now())
    assert keyring.kek()[0] == new_kek_id != old_kek_id
    # Data keys wrapped under the old KEK can still be unwrapped (until `rewrap`).
    assert keyring.kek(old_kek_id) == (old_kek_id, old_kek)

    # Rotation is persisted, still owner-only, and survives a restart.
    assert mode_of(key_file) == 0o600
    reopened = file_keyring(key_file, clock, create=False)
    assert reopened.key_ids("token_signing") == [old_signing.key_id, new_id, newest]
    assert reopened.current_key_id("token_signing") == newest
    assert reopened.current_key_id("kek") == new_kek_id
    stored = json.loads(key_file.read_text(encoding="utf-8"))
    assert stored["token_signing"]["keys"][old_signing.key_id]["retired_at"] is not None
    assert stored["token_signing"]["keys"][newest]["retired_at"] is None


def test_retired_signing_key_verifies_only_within_its_grace(key_file: Path, clock: ManualClock) -> None:
    keyring = file_keyring(key_file, clock)
    old = keyring.token_signing_key()
    rotated_at = clock.advance(hours=1)
    keyring.rotate("token_signing", now=rotated_at)
    grace = timedelta(hours=9)

    inside = keyring.token_verification_key(old.key_id, now=rotated_at + grace, grace=grace)
    assert inside is not None
    assert raw(inside) == raw(old.public_key)
    after = rotated_at + grace + timedelta(seconds=1)
    assert keyring.token_verification_key(old.key_id, now=after, grace=grace) is None
    # The current key has no expiry, and unknown ids verify nothing.
    current = keyring.current_key_id("token_signing")
    assert keyring.token_verification_key(current, now=after + timedelta(days=400), grace=grace) is not None
    assert keyring.token_verification_key("ts-99", now=rotated_at, grace=grace) is None


@pytest.mark.parametrize("family", ["pseudonym", "blind_index"])
def test_pseudonym_and_blind_index_keys_are_not_rotated_in_place(
    key_file: Path, clock: ManualClock, family: str
) -> None:
    keyring = file_keyring(key_file, clock)
    before = (keyring.pseudonym("op001"), keyring.blind_index("サトウ ハナコ", domain="name_kana"))
    with pytest.raises(KeyringError, match="not rotated in place"):
        keyring.rotate(family, now=clock.now())
    assert (keyring.pseudonym("op001"), keyring.blind_index("サトウ ハナコ", domain="name_kana")) == before
    assert keyring.key_ids(family) == [keyring.current_key_id(family)]


def test_rotation_without_a_key_source_is_refused(clock: ManualClock) -> None:
    keyring = Keyring(new_key_document(clock.now()))
    with pytest.raises(KeyringError, match="read-only"):
        keyring.rotate("token_signing", now=clock.now())


# -- pseudonyms -----------------------------------------------------------------------------------------


def test_pseudonym_is_stable_keyed_domain_separated_and_hides_the_input(
    key_file: Path, clock: ManualClock
) -> None:
    keyring = file_keyring(key_file, clock)
    value = "サトウ ハナコ|1990-04-12"
    pseudonym = keyring.pseudonym(value)
    assert keyring.pseudonym(value) == pseudonym
    assert file_keyring(key_file, clock, create=False).pseudonym(value) == pseudonym  # across restarts
    assert keyring.pseudonym(value, domain="login") != pseudonym
    assert keyring.pseudonym(value, domain="subject") == pseudonym
    assert keyring.pseudonym(value + " ") != pseudonym

    for shown in (pseudonym, keyring.pseudonym("op001", domain="login")):
        assert "サトウ" not in shown
        assert "1990" not in shown
        assert "op001" not in shown
    kid, _, digest = pseudonym.partition(":")
    assert kid == keyring.current_key_id("pseudonym")
    assert len(digest) == 32
    int(digest, 16)

    # Keyed: another installation's key gives an unrelated pseudonym for the same person.
    other = Keyring(new_key_document(clock.now()))
    assert other.pseudonym(value) != pseudonym


def test_bulk_blind_indexer_gives_exactly_the_blind_index(key_file: Path, clock: ManualClock) -> None:
    # Reconciliation matches the center's subjects against inquiries.subject_index with the bulk form:
    # a single differing value would report a matched inquiry as a subject mismatch.
    keyring = file_keyring(key_file, clock)
    index = keyring.blind_indexer(domain="subject")
    values = ["", "サトウハナコ|1990-04-12", "ｻﾄｳ ﾊﾅｺ|1990-04-12", "x" * 300, "\x1f|\u3000"]
    assert [index(value) for value in values] == [keyring.blind_index(v, domain="subject") for v in values]
    assert index(values[1]) != keyring.blind_indexer(domain="name_kana")(values[1])
    other = Keyring(new_key_document(clock.now())).blind_indexer(domain="subject")
    assert other(values[1]) != index(values[1])


# -- checkpoint keys ------------------------------------------------------------------------------------


def test_checkpoint_public_keys_include_retired_ones(key_file: Path, clock: ManualClock) -> None:
    keyring = file_keyring(key_file, clock)
    old = keyring.checkpoint_signing_key()
    old_signature = old.private_key.sign(b"checkpoint 1000")

    new_id = keyring.rotate("checkpoint_signing", now=clock.advance(days=365))
    newest_id = keyring.rotate("checkpoint_signing", now=clock.advance(days=365))
    assert keyring.checkpoint_signing_key().key_id == newest_id

    keys = file_keyring(key_file, clock, create=False).checkpoint_public_keys()
    assert set(keys) == {old.key_id, new_id, newest_id}
    # A checkpoint signed years ago still verifies with the kept public key...
    keys[old.key_id].verify(old_signature, b"checkpoint 1000")
    # ...and only with it.
    with pytest.raises(InvalidSignature):
        keys[newest_id].verify(old_signature, b"checkpoint 1000")
    with pytest.raises(InvalidSignature):
        keys[old.key_id].verify(old_signature, b"checkpoint 1001")


# -- a rotation made by another process (`shokai keys rotate` beside running gateways) --------------------


def test_a_kek_rotated_by_another_process_is_used_without_a_restart(
    key_file: Path, clock: ManualClock
) -> None:
    every = timedelta(seconds=5)
    gateway = open_keyring(key_file=key_file, env_keys=None, clock=clock, create=True, check_every=every)
    old_kek_id, _ = gateway.kek()
    cli = open_keyring(key_file=key_file, env_keys=None, clock=clock, create=False)

    new_kek_id = cli.rotate("kek", now=clock.now())
    # A data key the other process wrapped under the new KEK opens at once: the file is read again ...
    assert gateway.kek(new_kek_id) == cli.kek(new_kek_id)
    # ... and new seals use the new KEK from the next look at the file (at most `every` later).
    cli.rotate("kek", now=clock.now())
    newest = cli.current_key_id("kek")
    clock.advance(seconds=4)
    assert gateway.kek()[0] == new_kek_id
    clock.advance(seconds=1)
    assert gateway.kek()[0] == newest
    assert gateway.kek(old_kek_id)[0] == old_kek_id  # retired KEKs keep unwrapping until the rewrap

    # The other process rotates from what is stored, not from its own stale copy: nothing is lost.
    gateway.rotate("token_signing", now=clock.now())
    cli.rotate("checkpoint_signing", now=clock.now())
    stored = json.loads(key_file.read_text(encoding="utf-8"))
    assert len(stored["token_signing"]["keys"]) == 2 and len(stored["checkpoint_signing"]["keys"]) == 2
    assert len(stored["kek"]["keys"]) == 3


def test_a_key_file_that_cannot_be_read_again_keeps_the_keys_in_use(
    key_file: Path, clock: ManualClock
) -> None:
    gateway = open_keyring(
        key_file=key_file, env_keys=None, clock=clock, create=True, check_every=timedelta(seconds=5)
    )
    kek_id, kek = gateway.kek()
    key_file.write_text("{not json", encoding="utf-8")
    key_file.chmod(0o600)
    clock.advance(seconds=5)
    assert gateway.kek() == (kek_id, kek)
    with pytest.raises(KeyringError):
        gateway.kek("kek-99")


def test_environment_keys_do_not_follow_rotations(key_file: Path, clock: ManualClock) -> None:
    document = json.dumps(new_key_document(clock.now()))
    assert not open_keyring(key_file=key_file, env_keys=document, clock=clock, create=False).follows_rotations
    assert file_keyring(key_file, clock).follows_rotations


def _rotate_kek_times(key_file: str, times: int, start: Any) -> list[str]:
    """One process of the race below: wait for the others, then rotate the KEK ``times`` times."""
    clock = ManualClock()
    keyring = open_keyring(key_file=Path(key_file), env_keys=None, clock=clock, create=False)
    start.wait()
    return [keyring.rotate("kek", now=clock.now()) for _ in range(times)]


def _open_creating(key_file: str, start: Any) -> str:
    start.wait()
    keyring = open_keyring(key_file=Path(key_file), env_keys=None, clock=ManualClock(), create=True)
    return keyring.kek()[1].hex()


def test_rotations_by_processes_at_the_same_time_are_all_kept(key_file: Path, clock: ManualClock) -> None:
    """Two operators (or a cron job and an operator) rotating at once: every rotation ends in the file,
    none overwrites another's new key — a KEK lost that way would leave whatever it sealed unreadable."""
    file_keyring(key_file, clock)
    processes, times = 4, 15
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(processes)
        with context.Pool(processes) as pool:
            results = pool.starmap(_rotate_kek_times, [(str(key_file), times, start)] * processes)
    issued = [key_id for one in results for key_id in one]
    assert len(set(issued)) == processes * times
    stored = json.loads(key_file.read_text())["kek"]
    assert set(issued) | {"kek-1"} == set(stored["keys"])
    assert stored["current"] == f"kek-{processes * times + 1}"
    assert mode_of(key_file) == 0o600


def test_processes_starting_at_once_on_a_fresh_data_dir_share_one_key_document(key_file: Path) -> None:
    """Workers started together on an empty data directory: one creates the keys, the others use them,
    so no worker seals data under a key the file does not keep."""
    processes = 4
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(processes)
        with context.Pool(processes) as pool:
            keks = pool.starmap(_open_creating, [(str(key_file), start)] * processes)
    stored = json.loads(key_file.read_text())["kek"]
    assert set(keks) == {base64.b64decode(stored["keys"][stored["current"]]["secret"]).hex()}
