"""Daily-list files (DL-3; methods C and D of VI(1)①): CSV for Excel and the printable Japanese PDF.

No database: the renderers take a plain ListView. All people, documents and numbers are invented.
The PNG renderings of a zero-day list and a 30-line list go to test-artifacts/lists/ for a person to
look at (pdftoppm from poppler-utils; scripts/ensure-system-deps.sh installs it).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

from app.lists.formats import ListLineView, ListView, csv_safe, render_csv, render_pdf

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "lists"
BUSINESS_DATE = date(2026, 11, 24)  # a Tuesday
# 2026-11-24 09:00 JST
MORNING = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)

KANA = [
    "ヤマダ タロウ",
    "スズキ ハナコ",
    "タナカ イチロウ",
    "サトウ ミサキ",
    "コバヤシ ケンジ",
    "ワタナベ ユイ",
]
PURPOSES = [
    ("new_credit", "新規与信判断", "借入申込書"),
    ("guarantor", "連帯保証人", "主債務者の借入申込書"),
    ("suspension_check", "取引停止処分照会", "当座預金開設申込書"),
    ("credit_review", "信用状況再調査", "元帳"),
]
CHECKS = [None, "matched", "matched", "mismatch", "document_missing"]


def make_line(n: int, *, kind: str = "subject") -> ListLineView:
    purpose, label, document = PURPOSES[n % len(PURPOSES)]
    check = CHECKS[n % len(CHECKS)]
    at = MORNING + timedelta(minutes=7 * n)
    return ListLineView(
        line_no=n,
        line_type=["inquiry", "inquiry", "inquiry", "inquiry", "cancellation", "correction"][n % 6],
        at=at,
        operator_id=f"op-shinjuku-{n % 3 + 1:02d}",
        terminal_id=None if n % 11 == 0 else f"T001-{n % 4 + 1:02d}",
        purpose=purpose,
        purpose_label=label,
        name_kana=KANA[n % len(KANA)] if kind == "subject" else None,
        birth_date=date(1960 + n % 40, n % 12 + 1, n % 28 + 1) if kind == "subject" else None,
        document_label=document,
        document_reference=f"APP-2026-{1000 + n:05d}",
        check=check,
        checked_by=None if check is None else "cf-shinjuku-07",
        checked_at=None if check is None else at + timedelta(hours=20),
        response_delivered=n % 6 not in (4, 5),
    )


def make_view(count: int = 3, *, kind: str = "subject", **changes: object) -> ListView:
    rows = tuple(make_line(n, kind=kind) for n in range(1, count + 1))
    view = ListView(
        id="4f0c2a9e-1b7d-4c55-9a2e-6d1f3b8e0a11",
        branch_code="001",
        branch_name="新宿支店",
        business_date=BUSINESS_DATE,
        kind=kind,
        sequence=123,
        version=1,
        supersedes=None,
        supplement_reason=None,
        generated_at=datetime(2026, 11, 24, 9, 0, 5, tzinfo=UTC),  # 18:00:05 JST
        content_sha256=hashlib.sha256(f"{kind}-{count}".encode()).hexdigest(),
        no_inquiries=count == 0,
        lines=rows,
        inquiries_total=sum(1 for r in rows if r.line_type == "inquiry"),
        responses_delivered=sum(1 for r in rows if r.response_delivered),
        state="pending",
        due_at=datetime(2026, 11, 25, 15, 0, tzinfo=UTC),  # 2026-11-26 00:00 JST = 11/25 24:00
        confirmed_by=None,
        confirmed_at=None,
        late=False,
        late_reason=None,
        responses_in_hand=None,
        attested_no_inquiries=False,
    )
    return dataclasses.replace(view, **changes)  # type: ignore[arg-type]


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


def pdf_text(data: bytes) -> tuple[int, list[str]]:
    reader = PdfReader(io.BytesIO(data))
    return len(reader.pages), [page.extract_text() for page in reader.pages]


def to_png(data: bytes, stem: str) -> list[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / f"{stem}.pdf"
    pdf.write_bytes(data)
    for old in ARTIFACTS.glob(f"{stem}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(pdf), str(ARTIFACTS / stem)], check=True)
    return sorted(ARTIFACTS.glob(f"{stem}-*.png"))


# -- CSV ----------------------------------------------------------------------------------------------


def test_csv_has_bom_japanese_headers_and_one_row_per_line() -> None:
    view = make_view(5)
    data = render_csv(view)
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM so Excel reads UTF-8 (DL-3)
    assert b"\r\n" in data
    rows = csv_rows(data)
    assert rows[0] == [
        "行番号",
        "種別",
        "照会日時",
        "照会作業者",
        "端末",
        "照会目的",
        "被照会者カナ氏名",
        "生年月日",
        "同意書類",
        "書類番号",
        "回答受領",
        "照合結果",
        "確認者",
        "確認日時",
    ]
    assert len(rows) == 1 + 5
    assert [row[0] for row in rows[1:]] == ["1", "2", "3", "4", "5"]
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["種別"] == "照会"
    assert first["照会日時"] == "2026/11/24 09:07:00"  # Asia/Tokyo
    assert first["照会目的"] == "連帯保証人"
    assert first["被照会者カナ氏名"] == "スズキ ハナコ"
    assert first["照合結果"] == "一致"
    assert first["確認日時"] == "2026/11/25 05:07:00"
    by_type = {row[1] for row in rows[1:]}
    assert by_type == {"照会", "取消", "訂正"}
    assert dict(zip(rows[0], rows[5], strict=True))["照合結果"] == "未照合"


def test_csv_zero_day_says_no_inquiries() -> None:
    rows = csv_rows(render_csv(make_view(0)))
    assert len(rows) == 2
    assert rows[1][0] == "照会なし"
    assert all(cell == "" for cell in rows[1][1:])
    assert len(rows[1]) == len(rows[0])


def test_csv_count_list_has_no_name_or_birth_date_columns() -> None:
    rows = csv_rows(render_csv(make_view(4, kind="count")))
    assert "被照会者カナ氏名" not in rows[0]
    assert "生年月日" not in rows[0]
    assert len(rows[0]) == 12
    assert all(len(row) == 12 for row in rows)
    assert not any("ヤマダ" in cell for row in rows for cell in row)


def test_csv_subject_list_without_name_permission_marks_hidden() -> None:
    view = make_view(2)
    hidden = dataclasses.replace(
        view, lines=tuple(dataclasses.replace(x, name_kana=None, birth_date=None) for x in view.lines)
    )
    rows = csv_rows(render_csv(hidden))
    assert rows[1][6] == "（非表示）"
    assert rows[1][7] == "（非表示）"


@pytest.mark.parametrize(
    "value", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "＝1+1"]
)
def test_csv_cells_that_look_like_formulas_are_quoted(value: str) -> None:
    assert csv_safe(value) == "'" + value
    line = dataclasses.replace(make_line(1), document_reference=value, operator_id=value)
    view = make_view(1, lines=(line,))
    rows = csv_rows(render_csv(view))
    assert rows[1][3] == "'" + value
    assert rows[1][9] == "'" + value


def test_csv_plain_cells_are_untouched() -> None:
    for value in ["APP-0001", "ヤマダ タロウ", "", "a=b", "1-2"]:
        assert csv_safe(value) == value


# -- PDF ----------------------------------------------------------------------------------------------


def test_pdf_has_title_branch_date_hash_and_totals() -> None:
    view = make_view(5)
    data = render_pdf(view)
    assert data.startswith(b"%PDF-")
    pages, texts = pdf_text(data)
    assert pages == 1
    text = texts[0]
    assert "被照会者リスト" in text
    assert "001" in text
    assert "新宿支店" in text
    assert "2026年11月24日（火）" in text
    assert view.content_sha256 in text
    assert "第123号" in text
    assert "第1版" in text
    assert "2026年11月24日（火） 18:00:05" in text  # generated, JST
    assert "2026年11月25日（水） 24:00" in text  # due: end of next business day, JST
    assert "照会件数" in text and "回答受領件数" in text
    assert "スズキ ハナコ" in text
    assert "未確認" in text
    assert "確認者 署名・押印" in text
    assert "1 / 1" in text


def test_pdf_is_the_same_bytes_for_the_same_view() -> None:
    view = make_view(3)
    assert render_pdf(view) == render_pdf(view)


def test_pdf_zero_day_says_no_inquiries_and_carries_the_attestation() -> None:
    view = make_view(0)
    pages, texts = pdf_text(render_pdf(view))
    assert pages == 1
    text = texts[0]
    assert "照会なし" in text
    assert "信用情報センターへの照会（取消・訂正を含む）が行われなかった" in text
    assert "照会なしの証明" in text
    assert "未証明" in text
    assert view.content_sha256 in text


def test_pdf_count_list_has_no_names_and_shows_responses_in_hand() -> None:
    view = make_view(
        4,
        kind="count",
        responses_in_hand=3,
        state="confirmed",
        confirmed_by="cf-shinjuku-07",
        confirmed_at=datetime(2026, 11, 25, 1, 30, tzinfo=UTC),
    )
    _, texts = pdf_text(render_pdf(view))
    text = texts[0]
    assert "照会件数リスト" in text
    assert "被照会者カナ氏名" not in text
    assert "ヤマダ" not in text
    assert "手元回答件数" in text
    assert "3 件（確認者入力）" in text
    assert "確認済" in text
    assert "2026年11月25日（水） 10:30:00" in text


def test_pdf_supplementary_version_shows_reason_and_what_it_supersedes() -> None:
    view = make_view(
        2,
        version=2,
        supersedes="0b9d7e44-5a1c-4f3e-8d2b-7c6a5e4f3d21",
        supplement_reason="作成後の照会を追加",
        state="overdue",
        late=True,
        late_reason="担当者不在のため翌々日に確認",
    )
    _, texts = pdf_text(render_pdf(view))
    text = "\n".join(texts)
    assert "第2版（補正版）" in text
    assert "作成後の照会を追加" in text
    assert "0b9d7e44-5a1c-4f3e-8d2b-7c6a5e4f3d21" in text
    assert "期限超過" in text
    assert "担当者不在のため翌々日に確認" in text


def test_pdf_and_csv_name_the_supplement_reason_in_japanese_not_its_code() -> None:
    view = make_view(2, version=2, supersedes="0b9d7e44-5a1c-4f3e-8d2b-7c6a5e4f3d21")
    for code, label in [
        ("late_inquiry", "作成後に判明した照会の追加"),
        ("late_cancellation", "作成後に判明した取消の追加"),
    ]:
        _, texts = pdf_text(render_pdf(dataclasses.replace(view, supplement_reason=code)))
        text = "\n".join(texts)
        assert label in text and code not in text


def test_count_list_counts_a_center_refusal_as_an_answer_in_hand() -> None:
    # Line 1 was answered by the center with a refusal (NO_TRADE_INFO); its notice is in hand.
    base = make_view(2, kind="count")
    refused = dataclasses.replace(base.lines[0], response_delivered=False, center_refused=True)
    lines = (refused, dataclasses.replace(base.lines[1], response_delivered=True))
    view = dataclasses.replace(base, lines=lines, inquiries_total=2, responses_delivered=1, center_refusals=1)
    rows = csv_rows(render_csv(view))
    received = rows[0].index("回答受領")
    assert [row[received] for row in rows[1:]] == ["謝絶", "有"]
    _, texts = pdf_text(render_pdf(view))
    text = "".join("\n".join(texts).split())
    assert "1件＋センター謝絶1件" in text
    assert "センターの謝絶通知を回答1件として含む" in text


def test_pdf_markup_in_data_is_text_not_markup() -> None:
    line = dataclasses.replace(make_line(1), document_reference="<b>A&B</b>", operator_id="op<1>")
    _, texts = pdf_text(render_pdf(make_view(1, lines=(line,))))
    assert "<b>A&B</b>" in texts[0]


def test_pdf_long_list_paginates_with_page_numbers_and_repeated_header() -> None:
    view = make_view(80)
    pages, texts = pdf_text(render_pdf(view))
    assert pages >= 2
    for number, text in enumerate(texts, start=1):
        assert f"{number} / {pages}" in text
        if "APP-2026-" in text:
            assert "被照会者カナ氏名" in text  # the header row repeats on every page with lines
        assert view.content_sha256 in text  # a loose page can be matched to the system
        assert "新宿支店" in text
    everything = "\n".join(texts)
    assert "確認者 署名・押印" in texts[-1]
    assert "APP-2026-01080" in everything
    assert "APP-2026-01001" in texts[0]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        make_view(1, generated_at=datetime(2026, 11, 24, 9, 0))
    with pytest.raises(ValueError, match="kind"):
        make_view(1, kind="other")


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed")
def test_png_renderings_for_review() -> None:
    zero = to_png(render_pdf(make_view(0)), "subject-zero-day")
    thirty = to_png(render_pdf(make_view(30)), "subject-30-lines")
    count = to_png(render_pdf(make_view(12, kind="count")), "count-12-lines")
    supplement = to_png(
        render_pdf(
            make_view(
                4,
                version=2,
                supersedes="0b9d7e44-5a1c-4f3e-8d2b-7c6a5e4f3d21",
                supplement_reason="作成後の照会を追加",
            )
        ),
        "subject-supplement",
    )
    assert len(zero) == 1
    assert len(thirty) >= 2
    assert count and supplement
    for png in [*zero, *thirty, *count, *supplement]:
        assert png.stat().st_size > 10_000


def test_every_supplement_reason_has_the_same_japanese_label_in_the_pdf_and_the_panel() -> None:
    from app.lists.formats import SUPPLEMENT_REASON_LABELS
    from app.panel.i18n import CATALOGUES

    codes = {"late_inquiry", "late_cancellation", "late_correction", "late_change"}
    assert set(SUPPLEMENT_REASON_LABELS) == codes
    for code, label in SUPPLEMENT_REASON_LABELS.items():
        assert CATALOGUES["ja"][f"list.reason.{code}"] == label
        assert f"list.reason.{code}" in CATALOGUES["en"]
