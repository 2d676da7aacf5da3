"""Independent verification of an exported ledger range (LG-2), with no database and no gateway: an
auditor runs ``shokai audit verify --export FILE --checkpoint FILE --public-key FILE`` on their own
machine.

The range is a hash chain: each event's ``prev_hash`` must be the previous event's ``hash``, ``seq``
must count up by one, and each ``hash`` must be SHA-256(prev || canonical bytes) recomputed here. The
chain is anchored by signed checkpoints: every checkpoint whose seq lies in the range must carry a valid
Ed25519 signature by a key in the public-key file and the same hash as the event. At least one is
required, otherwise the range proves nothing beyond its own consistency. The verdict names the first
bad seq. Only this module, the canonical-bytes function and ``cryptography`` are used.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from app.audit.export import csv_value
from app.audit.ledger import canonical_event_bytes, canonical_json, ndjson_line, verify_checkpoint_signature
from app.clock import from_rfc3339


class ExportFormatError(ValueError):
    pass


@dataclass
class OfflineReport:
    ok: bool = False
    checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    first_bad_seq: int | None = None
    reason: str | None = None
    checkpoints_matched: list[int] = field(default_factory=list)
    anchored_through: int | None = None
    # Signed checkpoints given for seqs past the export's last event: the ledger went on beyond it. For
    # an export meant to reach the head, that is a tail cut off (with its checkpoints) in the database.
    checkpoints_beyond: list[int] = field(default_factory=list)

    @property
    def unanchored(self) -> tuple[int, int] | None:
        """The seq range after the last matching checkpoint: consistent among themselves, but no
        signature covers them, so they could have been rewritten together with the export's tail."""
        if not self.ok or self.last_seq is None or self.anchored_through is None:
            return None
        if self.anchored_through >= self.last_seq:
            return None
        return self.anchored_through + 1, self.last_seq

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "checkpoints_matched": self.checkpoints_matched,
            "anchored_through": self.anchored_through,
            "unanchored": list(self.unanchored) if self.unanchored else None,
            "checkpoints_beyond": self.checkpoints_beyond,
        }


@dataclass(frozen=True)
class PublicKeys:
    """The checkpoint keys an auditor holds, and until when each retired one could sign."""

    keys: dict[str, Ed25519PublicKey]
    signs_until: dict[str, datetime] = field(default_factory=dict)


def load_public_keys(path: Path) -> PublicKeys:
    """A PEM file (one key; its id is then taken from the checkpoints) or ``shokai keys public`` JSON:
    ``{key_id: {"public_key": PEM, "signs_until": time | null}}`` (or, as it was printed before,
    ``{key_id: PEM}``)."""
    text = path.read_text(encoding="utf-8")
    pems: dict[str, str] = {}
    limits: dict[str, datetime] = {}
    if text.lstrip().startswith("{"):
        for kid, value in orjson.loads(text).items():
            if isinstance(value, dict):
                pems[str(kid)] = str(value["public_key"])
                if value.get("signs_until"):
                    limits[str(kid)] = from_rfc3339(str(value["signs_until"]))
            else:
                pems[str(kid)] = str(value)
    else:
        pems = {"*": text}
    keys: dict[str, Ed25519PublicKey] = {}
    for kid, pem in pems.items():
        key = load_pem_public_key(pem.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ExportFormatError(f"key {kid} is not an Ed25519 public key")
        keys[kid] = key
    return PublicKeys(keys, limits)


def load_checkpoints(path: Path) -> list[dict[str, Any]]:
    """``GET /audit/checkpoints`` output, ``shokai audit checkpoints`` output, a list or one checkpoint."""
    data = orjson.loads(path.read_bytes())
    if isinstance(data, dict) and "items" in data:
        data = data["items"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ExportFormatError("the checkpoint file holds no checkpoints")
    return [dict(item) for item in data]


def _signed(checkpoint: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]) -> bool:
    if "*" in keys:
        return verify_checkpoint_signature(checkpoint, {str(checkpoint["key_id"]): keys["*"]})
    return verify_checkpoint_signature(checkpoint, keys)


Row = tuple[
    int,
    str,
    str | None,
    str,
    str | None,
    str | None,
    str,
    str | None,
    str | None,
    str,
    str,
    str | None,
    str,
    str,
]


def _ndjson_rows(lines: Iterator[bytes]) -> Iterator[Row | None]:
    for line in lines:
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
            row: Row = (
                int(item["seq"]),
                item["at"],
                item["actor_id"],
                canonical_json(item["actor_roles"]),
                item["terminal_id"],
                item["address"],
                item["action"],
                item["object_type"],
                item["object_id"],
                item["outcome"],
                canonical_json(item["details"]),
                item["request_id"],
                item["prev_hash"],
                item["hash"],
            )
        except (ValueError, KeyError, TypeError):
            yield None
            continue
        # The hash is over the text as stored, and the export writes it as stored: a line that is not
        # exactly the line of what it parses to (keys repeated or reordered, spaces) is not what the
        # gateway exported, even where its parsed meaning would hash right. It is an altered event, as
        # the online verify names it: with no hash of its own, its check fails there.
        yield row if ndjson_line(row) == line.rstrip(b"\r\n") + b"\n" else (*row[:13], "")


def _csv_rows(lines: Iterator[bytes]) -> Iterator[Row | None]:
    text = io.TextIOWrapper(io.BufferedReader(_Lines(lines)), encoding="utf-8", newline="")
    reader = csv.reader(text)
    next(reader, None)
    for cells in reader:
        if len(cells) != 14:
            yield None
            continue
        values: list[Any] = [csv_value(cell) for cell in cells]
        try:
            values[0] = int(values[0])
        except (TypeError, ValueError):
            yield None
            continue
        yield tuple(values)


class _Lines(io.RawIOBase):
    """An iterator of byte lines as a readable stream, so csv can read the file without loading it."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self._lines = lines
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            try:
                self._rest = next(self._lines)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


def verify_export(
    lines: Iterator[bytes],
    *,
    fmt: str,
    checkpoints: list[dict[str, Any]],
    public_keys: Mapping[str, Ed25519PublicKey],
    signs_until: Mapping[str, datetime] | None = None,
) -> OfflineReport:
    """Walk the exported range once (constant memory) and name the first bad seq. ``signs_until`` holds
    the retired keys: a checkpoint one of them signed after that is not the gateway's, as online."""
    report = OfflineReport()
    signed: dict[int, str] = {}
    bad_signatures: dict[int, str] = {}
    for checkpoint in checkpoints:
        seq = int(checkpoint["seq"])
        limit = (signs_until or {}).get(str(checkpoint.get("key_id")))
        if not _signed(checkpoint, public_keys):
            bad_signatures[seq] = "checkpoint_signature_invalid"
        elif limit is not None and from_rfc3339(str(checkpoint["at"])) > limit:
            bad_signatures[seq] = "checkpoint_key_retired"
        else:
            signed[seq] = str(checkpoint["hash"])
    rows = _csv_rows(lines) if fmt == "csv" else _ndjson_rows(lines)
    expected: int | None = None
    prev_hex: str | None = None

    def fail(seq: int | None, reason: str) -> OfflineReport:
        report.first_bad_seq = seq
        report.reason = reason
        report.ok = False
        return report

    for row in rows:
        if row is None:
            return fail(expected, "unreadable_event")
        seq = row[0]
        if expected is None:
            report.first_seq = seq
            prev_hex = row[12]
        elif seq != expected:
            return fail(expected, "missing_event" if seq > expected else "out_of_order_event")
        if row[12] != prev_hex:
            return fail(seq, "broken_link")
        try:
            prev = bytes.fromhex(str(prev_hex))
        except ValueError:
            return fail(seq, "broken_link")
        digest = hashlib.sha256(prev + canonical_event_bytes(*row[:12])).hexdigest()
        if digest != row[13]:
            return fail(seq, "altered_event")
        if seq in bad_signatures:
            return fail(seq, bad_signatures[seq])
        if seq in signed:
            if signed[seq] != digest:
                return fail(seq, "checkpoint_mismatch")
            report.checkpoints_matched.append(seq)
            report.anchored_through = seq
        prev_hex = digest
        expected = seq + 1
        report.checked += 1
        report.last_seq = seq
    if report.checked == 0:
        return fail(None, "empty_export")
    last_seq = report.last_seq or 0
    report.checkpoints_beyond = sorted(seq for seq in signed if seq > last_seq)
    if not report.checkpoints_matched:
        return fail(None, "no_signed_checkpoint_in_range")
    report.ok = True
    return report


def verify_export_file(export: Path, checkpoint: Path, public_key: Path) -> OfflineReport:
    fmt = "csv" if export.suffix.lower() == ".csv" else "ndjson"
    with export.open("rb") as handle:
        keys = load_public_keys(public_key)
        return verify_export(
            iter(handle),
            fmt=fmt,
            checkpoints=load_checkpoints(checkpoint),
            public_keys=keys.keys,
            signs_until=keys.signs_until,
        )
