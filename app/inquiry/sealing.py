"""Sealing the subject's identity and the center's response (EN-1).

The subject and the response each get their own data key, so destroying a response (crypto-shredding
its data key, RT-1) keeps the inquiry's metadata and subject for the retention of the lists.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from app.context import AppContext
from app.crypto.envelope import Sealed, open_sealed, seal
from app.errors import ResponseDestroyed
from app.inquiry.models import Inquiry, SealedResponse
from app.inquiry.subject import kana_key


def subject_aad(inquiry_id: str) -> bytes:
    return f"inquiry:{inquiry_id}:subject".encode()


def response_aad(inquiry_id: str) -> bytes:
    return f"inquiry:{inquiry_id}:response".encode()


def subject_lookup_key(name_kana: str, birth_date: str) -> str:
    return f"{kana_key(name_kana)}|{birth_date}"


def seal_subject(ctx: AppContext, inquiry: Inquiry, subject: dict[str, Any]) -> None:
    sealed = seal(
        ctx.keyring, json.dumps(subject, ensure_ascii=False).encode(), associated_data=subject_aad(inquiry.id)
    )
    inquiry.subject_sealed = sealed.ciphertext
    inquiry.subject_nonce = sealed.nonce
    inquiry.subject_wrapped_key = sealed.wrapped_key
    inquiry.subject_kek_id = sealed.kek_id
    lookup = subject_lookup_key(subject["name_kana"], subject["birth_date"])
    inquiry.subject_index = ctx.keyring.blind_index(lookup, domain="subject")
    inquiry.subject_pseudonym = ctx.keyring.pseudonym(lookup, domain="subject")


def open_subject(ctx: AppContext, inquiry: Inquiry) -> dict[str, Any]:
    sealed = Sealed(
        inquiry.subject_sealed, inquiry.subject_nonce, inquiry.subject_wrapped_key, inquiry.subject_kek_id
    )
    # orjson, not json: the subject is only strings and nulls, which both read alike, and json.loads of
    # its Japanese text cost as much as the decryption (a day's lists open 100,000 subjects).
    return dict(orjson.loads(open_sealed(ctx.keyring, sealed, associated_data=subject_aad(inquiry.id))))


def open_response(ctx: AppContext, response: SealedResponse) -> dict[str, Any]:
    if response.wrapped_key is None:
        raise ResponseDestroyed("The response was destroyed at the end of its use period")
    sealed = Sealed(response.ciphertext, response.nonce, response.wrapped_key, response.kek_id)
    return dict(
        json.loads(open_sealed(ctx.keyring, sealed, associated_data=response_aad(response.inquiry_id)))
    )
