"""Daily-list files (DL-3): CSV for Excel and a printable Japanese PDF of the daily subject list
(被照会者リスト, method C) and the daily count list (照会件数リスト, method D) — VI(1)① of the guideline.

Both renderers take a :class:`ListView`, a plain snapshot the router assembles from the stored list, its
sealed content and the line checks; they read no database and no clock, so the same view always renders
the same bytes (the PDF is written in reportlab's invariant mode).

CSV: UTF-8 with a BOM so Excel opens it as UTF-8, CRLF line ends, one header row in Japanese and one
row per list line; a day without inquiries has the single row 「照会なし」. The list's own metadata
(branch, business date, version, content hash) is not mixed into the table: it is in the file name the
router gives the download and in the JSON and PDF forms. Every cell that a spreadsheet could take for a
formula (= + - @, tab, CR, and their full-width forms) is prefixed with a single quote.

PDF: A4 landscape (the subject list has 14 columns), Japanese set in the embedded IPAexGothic subset
(app/lists/fonts), so the printout looks the same in every viewer and its text extracts as Unicode. Page 1
carries the title, branch, business date, 通番, 版 (補正版 with its reason and the version it replaces),
generation time, the SHA-256 content hash, the deadline (DL-4), totals and state; the lines follow in a
ruled table whose header row repeats on every page; the last page has the confirmation section with the
confirmer's signature and seal box. Every page repeats the list's identity and full content hash in its
footer, with "page / pages", so a loose printed page can still be matched to the system.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as pdfcanvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from app.clock import TOKYO

KINDS = ("subject", "count")
LINE_TYPES = ("inquiry", "cancellation", "correction")
CHECKS = ("matched", "mismatch", "document_missing")

TITLES = {"subject": "被照会者リスト", "count": "照会件数リスト"}
SUBTITLES = {
    "subject": "照会日以降・被照会者リストによる確認（方法C）",
    "count": "照会日以降・照会件数リストによる確認（方法D）",
}
LINE_TYPE_LABELS = {"inquiry": "照会", "cancellation": "取消", "correction": "訂正"}
CHECK_LABELS = {"matched": "一致", "mismatch": "不一致", "document_missing": "書類なし"}
UNCHECKED_LABEL = "未照合"
STATE_LABELS = {
    "pending": "未確認",
    "confirmed": "確認済",
    "overdue": "期限超過（未確認）",
    "superseded": "差替済（補正版あり）",
}
NO_INQUIRIES = "照会なし"
# Why a supplementary version (補正版) exists (DL-2); the stored code stays English, people read these.
SUPPLEMENT_REASON_LABELS = {
    "late_inquiry": "作成後に判明した照会の追加",
    "late_cancellation": "作成後に判明した取消の追加",
    "late_correction": "作成後に判明した訂正の追加",
    "late_change": "作成後の照会記録の変更",
}
RECEIVED_LABELS = {"delivered": "有", "refused": "謝絶", "none": "無"}
HIDDEN = "（非表示）"
WEEKDAYS_JA = "月火水木金土日"

# A spreadsheet takes a cell starting with one of these for a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


@dataclass(frozen=True)
class ListLineView:
    line_no: int
    line_type: str  # "inquiry" | "cancellation" | "correction"
    at: datetime  # aware UTC; shown in Asia/Tokyo
    operator_id: str
    terminal_id: str | None
    purpose: str  # code, e.g. "new_credit"
    purpose_label: str  # e.g. "新規与信判断"
    name_kana: str | None  # None on count lists and for readers who may not see names
    birth_date: date | None
    document_label: str  # e.g. "借入申込書"
    document_reference: str
    check: str | None  # None | "matched" | "mismatch" | "document_missing"
    checked_by: str | None
    checked_at: datetime | None
    response_delivered: bool
    # The center answered with a refusal (e.g. CENTER_NO_TRADE_INFO): the refusal notice is the answer.
    center_refused: bool = False

    def __post_init__(self) -> None:
        _require_aware("at", self.at)
        _require_aware("checked_at", self.checked_at)


@dataclass(frozen=True)
class ListView:
    id: str
    branch_code: str
    branch_name: str  # e.g. "新宿支店"
    business_date: date
    kind: str  # "subject" | "count"
    sequence: int
    version: int
    supersedes: str | None
    supplement_reason: str | None
    generated_at: datetime
    content_sha256: str
    no_inquiries: bool
    lines: tuple[ListLineView, ...]
    inquiries_total: int
    responses_delivered: int
    state: str  # "pending" | "confirmed" | "overdue" (also "superseded")
    due_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None
    late: bool
    late_reason: str | None
    responses_in_hand: int | None
    attested_no_inquiries: bool
    center_refusals: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown list kind {self.kind!r}")
        _require_aware("generated_at", self.generated_at)
        _require_aware("due_at", self.due_at)
        _require_aware("confirmed_at", self.confirmed_at)

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    @property
    def shows_subjects(self) -> bool:
        return self.kind == "subject"


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


# -- text forms shared by CSV and PDF -----------------------------------------------------------------


def date_ja(day: date) -> str:
    """2026年11月24日（火）"""
    return f"{day.year}年{day.month}月{day.day}日（{WEEKDAYS_JA[day.weekday()]}）"


def datetime_ja(at: datetime) -> str:
    """2026年11月24日（火）18:00:05 in Asia/Tokyo."""
    local = at.astimezone(TOKYO)
    return f"{date_ja(local.date())} {local:%H:%M:%S}"


def deadline_ja(at: datetime) -> str:
    """The deadline as a bank writes it: midnight closing a day is that day's 24:00."""
    local = at.astimezone(TOKYO)
    if (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0):
        return f"{date_ja(local.date() - timedelta(days=1))} 24:00"
    return f"{date_ja(local.date())} {local:%H:%M}"


def supplement_reason_ja(code: str | None) -> str:
    if not code:
        return "（記載なし）"
    return SUPPLEMENT_REASON_LABELS.get(code, code)


def received_ja(line: ListLineView) -> str:
    if line.response_delivered:
        return RECEIVED_LABELS["delivered"]
    return RECEIVED_LABELS["refused" if line.center_refused else "none"]


def delivered_ja(view: ListView) -> str:
    """回答受領件数, with the center's refusals named: each refusal notice is an answer in hand."""
    if view.center_refusals:
        return f"{view.responses_delivered} 件＋センター謝絶 {view.center_refusals} 件"
    return f"{view.responses_delivered} 件"


def version_ja(view: ListView) -> str:
    if view.version > 1 or view.supersedes:
        return f"第{view.version}版（補正版）"
    return f"第{view.version}版"


def _line_type_ja(line: ListLineView) -> str:
    return LINE_TYPE_LABELS.get(line.line_type, line.line_type)


def _check_ja(line: ListLineView) -> str:
    return CHECK_LABELS.get(line.check, line.check) if line.check else UNCHECKED_LABEL


def _headers(kind: str) -> list[str]:
    headers = ["行番号", "種別", "照会日時", "照会作業者", "端末", "照会目的"]
    if kind == "subject":
        headers += ["被照会者カナ氏名", "生年月日"]
    return [*headers, "同意書類", "書類番号", "回答受領", "照合結果", "確認者", "確認日時"]


# -- CSV ----------------------------------------------------------------------------------------------


def csv_safe(value: str) -> str:
    """A cell a spreadsheet shows as text, never evaluates (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_time(at: datetime | None) -> str:
    return at.astimezone(TOKYO).strftime("%Y/%m/%d %H:%M:%S") if at else ""


def _csv_row(view: ListView, line: ListLineView) -> list[str]:
    row = [
        str(line.line_no),
        _line_type_ja(line),
        _csv_time(line.at),
        line.operator_id,
        line.terminal_id or "",
        line.purpose_label,
    ]
    if view.shows_subjects:
        row += [
            line.name_kana if line.name_kana is not None else HIDDEN,
            line.birth_date.strftime("%Y/%m/%d") if line.birth_date else HIDDEN,
        ]
    return [
        *row,
        line.document_label,
        line.document_reference,
        received_ja(line),
        _check_ja(line),
        line.checked_by or "",
        _csv_time(line.checked_at),
    ]


def render_csv(view: ListView) -> bytes:
    """The list as CSV: UTF-8 with BOM, one Japanese header row, one row per line (or 照会なし)."""
    headers = _headers(view.kind)
    rows: list[list[str]] = [headers]
    if view.lines:
        rows += [_csv_row(view, line) for line in view.lines]
    else:
        rows.append([NO_INQUIRIES] + [""] * (len(headers) - 1))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([csv_safe(cell) for cell in row] for row in rows)
    return out.getvalue().encode("utf-8-sig")


# -- PDF ----------------------------------------------------------------------------------------------

FONT = "IPAexGothic"
MONO = "Courier"
PAGE_SIZE = landscape(A4)
_MARGIN_X = 12 * mm
_MARGIN_TOP = 17 * mm
_MARGIN_BOTTOM = 16 * mm
_BODY_WIDTH = PAGE_SIZE[0] - 2 * _MARGIN_X

_INK = colors.HexColor("#1a1a1a")
_RULE = colors.HexColor("#4d4d4d")
_HAIRLINE = colors.HexColor("#9a9a9a")
_MUTED = colors.HexColor("#5c5c5c")
_LABEL_BG = colors.HexColor("#e8ebf0")
_HEAD_BG = colors.HexColor("#dde2ea")
_ZEBRA = colors.HexColor("#f5f6f8")
_NOTICE_BG = colors.HexColor("#fff3cf")
_ALERT = colors.HexColor("#a3001b")

# Column weights of the line table; scaled to the body width.
_WEIGHTS = {
    "行番号": 10,
    "種別": 9,
    "照会日時": 15,
    "照会作業者": 22,
    "端末": 16,
    "照会目的": 24,
    "被照会者カナ氏名": 30,
    "生年月日": 18,
    "同意書類": 31,
    "書類番号": 25,
    "回答受領": 13,
    "照合結果": 14,
    "確認者": 22,
    "確認日時": 20,
}
_CENTERED = {"行番号", "種別", "照会日時", "生年月日", "回答受領", "照合結果", "確認日時"}


@lru_cache(maxsize=1)
def _register_fonts() -> None:
    font = resources.files("app.lists.fonts").joinpath("ipaexg.ttf")
    with resources.as_file(font) as path:
        pdfmetrics.registerFont(TTFont(FONT, str(path)))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT, italic=FONT, boldItalic=FONT)


def _style(name: str, size: float, *, leading: float | None = None, **extra: Any) -> ParagraphStyle:
    options: dict[str, Any] = {"textColor": _INK, "wordWrap": "CJK", **extra}
    return ParagraphStyle(
        name,
        fontName=FONT,
        fontSize=size,
        leading=leading if leading is not None else size * 1.3,
        **options,
    )


@lru_cache(maxsize=1)
def _styles() -> dict[str, ParagraphStyle]:
    return {
        "title": _style("title", 20, leading=24, alignment=TA_CENTER),
        "subtitle": _style("subtitle", 9, alignment=TA_CENTER, textColor=_MUTED),
        "label": _style("label", 8.5, leading=10.5),
        "value": _style("value", 9.5, leading=12),
        "value_big": _style("value_big", 12, leading=14),
        "mono": ParagraphStyle("mono", fontName=MONO, fontSize=8.5, leading=11, textColor=_INK),
        "section": _style("section", 11, leading=14, spaceBefore=2, spaceAfter=3),
        "cell": _style("cell", 7.5, leading=9.5),
        "cell_center": _style("cell_center", 7.5, leading=9.5, alignment=TA_CENTER),
        "head": _style("head", 7.5, leading=9.5, alignment=TA_CENTER),
        "none_big": _style("none_big", 18, leading=24, alignment=TA_CENTER),
        "none_text": _style("none_text", 9, leading=12, alignment=TA_CENTER, textColor=_MUTED),
        "text": _style("text", 9, leading=13),
        "totals": _style("totals", 9.5, leading=12, alignment=TA_RIGHT),
        "sign_label": _style("sign_label", 8.5, leading=10.5, alignment=TA_CENTER),
        "sign_date": _style("sign_date", 10, leading=12, alignment=TA_RIGHT),
        "seal_mark": _style("seal_mark", 8, leading=10, alignment=TA_RIGHT, textColor=_HAIRLINE),
    }


def _p(text: str, style: str) -> Paragraph:
    return Paragraph(escape(text), _styles()[style])


def _pm(markup: str, style: str) -> Paragraph:
    """A paragraph from markup whose variable parts the caller escaped."""
    return Paragraph(markup, _styles()[style])


def _mono(text: str) -> str:
    return f'<font face="{MONO}">{escape(text)}</font>'


def _pdf_time(at: datetime, business_date: date) -> str:
    local = at.astimezone(TOKYO)
    if local.date() == business_date:
        return local.strftime("%H:%M:%S")
    return f"{local.month}/{local.day} {local:%H:%M:%S}"


def _pdf_short_time(at: datetime | None) -> str:
    if at is None:
        return ""
    local = at.astimezone(TOKYO)
    return f"{local.month}/{local.day} {local:%H:%M}"


def _line_cells(view: ListView, line: ListLineView) -> list[Paragraph]:
    values: list[tuple[str, str]] = [
        (str(line.line_no), "cell_center"),
        (_line_type_ja(line), "cell_center"),
        (_pdf_time(line.at, view.business_date), "cell_center"),
        (line.operator_id, "cell"),
        (line.terminal_id or "―", "cell"),
        (line.purpose_label, "cell"),
    ]
    if view.shows_subjects:
        values += [
            (line.name_kana if line.name_kana is not None else HIDDEN, "cell"),
            (f"{line.birth_date:%Y/%m/%d}" if line.birth_date else HIDDEN, "cell_center"),
        ]
    values += [
        (line.document_label, "cell"),
        (line.document_reference, "cell"),
        (received_ja(line), "cell_center"),
    ]
    cells = [_p(text, style) for text, style in values]
    check = escape(_check_ja(line))
    if line.check in ("mismatch", "document_missing"):
        check = f'<font color="{_ALERT.hexval()}">{check}</font>'
    elif line.check is None:
        check = f'<font color="{_MUTED.hexval()}">{check}</font>'
    cells.append(_pm(check, "cell_center"))
    cells.append(_p(line.checked_by or "", "cell"))
    cells.append(_p(_pdf_short_time(line.checked_at), "cell_center"))
    return cells


def _column_widths(headers: Sequence[str]) -> list[float]:
    total = sum(_WEIGHTS[h] for h in headers)
    return [_BODY_WIDTH * _WEIGHTS[h] / total for h in headers]


def _lines_table(view: ListView) -> Table:
    headers = _headers(view.kind)
    data: list[list[Any]] = [[_p(h, "head") for h in headers]]
    style: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("BACKGROUND", (0, 0), (-1, 0), _HEAD_BG),
        ("INNERGRID", (0, 0), (-1, -1), 0.4, _HAIRLINE),
        ("BOX", (0, 0), (-1, -1), 0.9, _RULE),
        ("LINEBELOW", (0, 0), (-1, 0), 0.9, _RULE),
    ]
    if view.lines:
        data += [_line_cells(view, line) for line in view.lines]
        style.append(("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, _ZEBRA]))
    else:
        data.append(
            [
                [
                    _p(NO_INQUIRIES, "none_big"),
                    _p("本営業日の照会はありません（取消・訂正を含む）。", "none_text"),
                ]
            ]
            + [""] * (len(headers) - 1)
        )
        style += [
            ("SPAN", (0, 1), (-1, 1)),
            ("TOPPADDING", (0, 1), (-1, 1), 6),
            ("BOTTOMPADDING", (0, 1), (-1, 1), 7),
        ]
    return Table(data, colWidths=_column_widths(headers), repeatRows=1, style=TableStyle(style))


def _grid(rows: Sequence[Sequence[Any]], widths: Sequence[float], spans: Sequence[int] = ()) -> Table:
    """A ruled label/value grid; label cells are the even columns. ``spans`` lists rows whose first
    value runs to the right edge."""
    style: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("GRID", (0, 0), (-1, -1), 0.4, _HAIRLINE),
        ("BOX", (0, 0), (-1, -1), 0.9, _RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 5),
        ("RIGHTPADDING", (0, 0), (-1, -1), 5),
    ]
    for col in range(0, len(widths), 2):
        style.append(("BACKGROUND", (col, 0), (col, -1), _LABEL_BG))
    for row in spans:
        style.append(("SPAN", (1, row), (-1, row)))
        style.append(("BACKGROUND", (2, row), (-1, row), colors.white))
    return Table([list(r) for r in rows], colWidths=list(widths), style=TableStyle(style))


def _state_markup(view: ListView) -> str:
    label = escape(STATE_LABELS.get(view.state, view.state))
    if view.state == "superseded" and view.confirmed_at is not None:
        label = f"{escape(STATE_LABELS['confirmed'])}・{label}"  # replaced after it was confirmed
    if view.state == "overdue":
        return f'<font color="{_ALERT.hexval()}">{label}</font>'
    return label


def _check_summary(view: ListView) -> str:
    if not view.lines:
        return "―"
    counts = {key: 0 for key in (*CHECKS, None)}
    for line in view.lines:
        counts[line.check if line.check in CHECKS else None] += 1
    return (
        f"一致 {counts['matched']} 件、不一致 {counts['mismatch']} 件、"
        f"書類なし {counts['document_missing']} 件、未照合 {counts[None]} 件"
    )


def _header_block(view: ListView) -> list[Flowable]:
    half = _BODY_WIDTH / 2
    widths = [32 * mm, half - 32 * mm, 32 * mm, half - 32 * mm]
    supplementary = view.version > 1 or view.supersedes is not None
    rows: list[list[Any]] = [
        [
            _p("店番・店名", "label"),
            _p(f"{view.branch_code}　{view.branch_name}", "value_big"),
            _p("営業日（照会日）", "label"),
            _p(date_ja(view.business_date), "value_big"),
        ],
        [
            _p("通番", "label"),
            _p(f"第{view.sequence}号", "value"),
            _p("版", "label"),
            _p(version_ja(view), "value"),
        ],
        [
            _p("作成日時", "label"),
            _p(f"{datetime_ja(view.generated_at)}（日本時間）", "value"),
            _p("確認期限", "label"),
            _p(f"{deadline_ja(view.due_at)}（翌営業日末・日本時間）", "value"),
        ],
        [
            _p("照会件数", "label"),
            _p(f"{view.inquiries_total} 件", "value"),
            _p("回答受領件数", "label"),
            _p(delivered_ja(view), "value"),
        ],
        [
            _p("確認状態", "label"),
            _pm(_state_markup(view), "value"),
            _p("照合状況", "label"),
            _p(_check_summary(view), "value"),
        ],
        [_p("リストID", "label"), _p(view.id, "mono"), "", ""],
        [_p("内容ハッシュ", "label"), _pm(f"SHA-256 {_mono(view.content_sha256)}", "value"), "", ""],
    ]
    spans = [5, 6]
    highlights: list[tuple[Any, ...]] = []
    if supplementary:
        # 補正版 (DL-2): why this version exists and which version it replaces; the original is kept.
        reason = supplement_reason_ja(view.supplement_reason)
        rows.append([_p("補正理由", "label"), _p(reason, "value"), "", ""])
        rows.append(
            [
                _p("差替対象", "label"),
                _pm(
                    f"{_mono(view.supersedes or '（記載なし）')} の版に代わる補正版です"
                    "（原版は保存されています）",
                    "value",
                ),
                "",
                "",
            ]
        )
        spans += [7, 8]
        highlights = [
            ("BACKGROUND", (3, 1), (3, 1), _NOTICE_BG),
            ("BACKGROUND", (1, 7), (-1, 8), _NOTICE_BG),
        ]
    grid = _grid(rows, widths, spans)
    grid.setStyle(TableStyle(highlights))
    return [
        _p(view.title, "title"),
        Spacer(1, 1.5 * mm),
        _p(SUBTITLES[view.kind], "subtitle"),
        Spacer(1, 4 * mm),
        grid,
    ]


def _statement(view: ListView) -> str:
    if view.no_inquiries or not view.lines:
        return (
            "本営業日において、当店から信用情報センターへの照会（取消・訂正を含む）が行われなかったことを"
            "照会記録により確認しました。"
        )
    if view.kind == "count":
        return (
            "手元の回答件数（センターの謝絶通知を回答1件として含む）が照会件数および回答受領件数"
            "（センター謝絶を含む）と一致すること、ならびに各回答を同意書類等と"
            "照合し、その結果を照合結果欄に記録したことを確認しました。"
        )
    return "上記の各照会について同意書類等と照合し、その結果を照合結果欄に記録したことを確認しました。"


def _date_blank() -> Table:
    """「　　年　　月　　日」 for a handwritten date: blanks that a paragraph would collapse, so a table."""
    cells = ["", _p("年", "sign_date"), "", _p("月", "sign_date"), "", _p("日", "sign_date")]
    blank, unit = 11 * mm, 5 * mm
    return Table(
        [cells],
        colWidths=[blank + 3 * mm, unit, blank, unit, blank, unit],
        hAlign="CENTER",
        style=TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0)]),
    )


def _signature_box(seal_w: float, date_w: float) -> Table:
    return Table(
        [
            [_p("確認者 署名・押印", "sign_label"), _p("確認日", "sign_label")],
            [_p("印", "seal_mark"), _date_blank()],
        ],
        colWidths=[seal_w, date_w],
        rowHeights=[7 * mm, 26 * mm],
        style=TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), _LABEL_BG),
                ("GRID", (0, 0), (-1, -1), 0.4, _HAIRLINE),
                ("BOX", (0, 0), (-1, -1), 0.9, _RULE),
                ("VALIGN", (0, 0), (-1, 0), "MIDDLE"),
                ("VALIGN", (0, 1), (0, 1), "BOTTOM"),
                ("VALIGN", (1, 1), (1, 1), "MIDDLE"),
                ("RIGHTPADDING", (0, 1), (-1, 1), 6),
                ("BOTTOMPADDING", (0, 1), (0, 1), 4),
            ]
        ),
    )


def _confirmation_block(view: ListView) -> list[Flowable]:
    """確認欄: the recorded state on the left, the statement and the confirmer's signature and seal box
    on the right, kept together on one page."""
    seal_w, date_w = 62 * mm, 58 * mm
    gap = 8 * mm
    left_w = _BODY_WIDTH - seal_w - date_w - gap
    rows: list[list[Any]] = [
        [_p("確認状態", "label"), _pm(_state_markup(view), "value")],
        [_p("確認者", "label"), _p(view.confirmed_by or "―", "value")],
        [
            _p("確認日時", "label"),
            _p(f"{datetime_ja(view.confirmed_at)}（日本時間）" if view.confirmed_at else "―", "value"),
        ],
    ]
    if view.kind == "count":
        in_hand = "未入力" if view.responses_in_hand is None else f"{view.responses_in_hand} 件"
        rows.append([_p("手元回答件数", "label"), _p(f"{in_hand}（確認者入力）", "value")])
    if view.no_inquiries or not view.lines:
        attested = "証明済" if view.attested_no_inquiries else "未証明"
        rows.append([_p("照会なしの証明", "label"), _p(attested, "value")])
    if view.late:
        late = f"期限後の確認　理由：{view.late_reason or '（記載なし）'}"
        rows.append(
            [_p("遅延", "label"), _pm(f'<font color="{_ALERT.hexval()}">{escape(late)}</font>', "value")]
        )
    left = [_grid(rows, [32 * mm, left_w - 32 * mm]), Spacer(1, 3 * mm), _p(_statement(view), "text")]
    layout = Table(
        [[left, "", _signature_box(seal_w, date_w)]],
        colWidths=[left_w, gap, seal_w + date_w],
        style=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
            ]
        ),
    )
    return [KeepTogether([_p("確認欄", "section"), layout])]


def _story(view: ListView) -> list[Flowable]:
    story = _header_block(view)
    story += [Spacer(1, 4 * mm), _p("明細", "section"), _lines_table(view), Spacer(1, 2.5 * mm)]
    story += [_totals(view), Spacer(1, 4 * mm)]
    return story + _confirmation_block(view)


def _totals(view: ListView) -> Table:
    """The closing totals row under the table, ended by 以上 as on a paper form."""
    cells = [
        _p("合計", "label"),
        _p("明細行数", "label"),
        _p(f"{len(view.lines)} 行", "totals"),
        _p("照会件数", "label"),
        _p(f"{view.inquiries_total} 件", "totals"),
        _p("回答受領件数", "label"),
        _p(delivered_ja(view), "totals"),
        _p("以上", "totals"),
    ]
    widths = [14 * mm, 20 * mm, 20 * mm, 20 * mm, 20 * mm, 24 * mm, 20 * mm, 14 * mm]
    return Table(
        [cells],
        colWidths=widths,
        hAlign="RIGHT",
        style=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("GRID", (0, 0), (-2, -1), 0.4, _HAIRLINE),
                ("BOX", (0, 0), (-2, -1), 0.9, _RULE),
                ("BACKGROUND", (0, 0), (1, 0), _LABEL_BG),
                ("BACKGROUND", (3, 0), (3, 0), _LABEL_BG),
                ("BACKGROUND", (5, 0), (5, 0), _LABEL_BG),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
                ("LEFTPADDING", (0, 0), (-1, -1), 5),
                ("RIGHTPADDING", (0, 0), (-1, -1), 5),
            ]
        ),
    )


class _NumberedCanvas(pdfcanvas.Canvas):
    """Holds every page until the end so each can say "page / pages"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            width = self._pagesize[0]
            self.setFont(FONT, 8.5)
            self.setFillColor(_INK)
            self.drawRightString(width - _MARGIN_X, 8 * mm, f"{self._pageNumber} / {total}")
            super().showPage()
        super().save()


def _fit(text: str, font: str, size: float, max_width: float) -> str:
    """``text`` cut with an ellipsis so it is at most ``max_width`` wide: running text never overlaps."""
    if pdfmetrics.stringWidth(text, font, size) <= max_width:
        return text
    while text and pdfmetrics.stringWidth(text + "…", font, size) > max_width:
        text = text[:-1]
    return text + "…"


def _draw_segments(canv: Any, x: float, y: float, segments: Sequence[tuple[str, str]], size: float) -> None:
    for font, text in segments:
        canv.setFont(font, size)
        canv.drawString(x, y, text)
        x += pdfmetrics.stringWidth(text, font, size)


def _page_decorations(view: ListView) -> Callable[[Any, Any], None]:
    width, height = PAGE_SIZE
    mark = "取扱注意（個人信用情報）" if view.kind == "subject" else "取扱注意"
    mark_w = pdfmetrics.stringWidth(mark, FONT, 8.5) + 4 * mm
    head = f"{view.title}　{view.branch_code} "
    tail = f"　営業日 {date_ja(view.business_date)}　通番 第{view.sequence}号　{version_ja(view)}"
    room = _BODY_WIDTH - mark_w - 6 * mm - pdfmetrics.stringWidth(head + tail, FONT, 9)
    running = head + _fit(view.branch_name, FONT, 9, max(room, 20 * mm)) + tail
    # The branch name is left out of the footer (the running header has it) so the footer's length is
    # bounded and never reaches the page number.
    footer = [
        (FONT, f"{view.title}　店番 {view.branch_code}　ID "),
        (MONO, view.id),
        (FONT, "　SHA-256 "),
        (MONO, view.content_sha256),
    ]

    def decorate(canv: Any, doc: Any) -> None:
        canv.saveState()
        # Confidentiality mark on every page: subject and count lists are credit-inquiry records.
        canv.setStrokeColor(_RULE)
        canv.setLineWidth(0.7)
        canv.rect(width - _MARGIN_X - mark_w, height - 11.5 * mm, mark_w, 6 * mm)
        canv.setFillColor(_INK)
        canv.setFont(FONT, 8.5)
        canv.drawCentredString(width - _MARGIN_X - mark_w / 2, height - 9.6 * mm, mark)
        if canv.getPageNumber() > 1:
            canv.setFont(FONT, 9)
            canv.drawString(_MARGIN_X, height - 9.6 * mm, running)
            canv.setStrokeColor(_HAIRLINE)
            canv.setLineWidth(0.5)
            canv.line(_MARGIN_X, height - 13 * mm, width - _MARGIN_X, height - 13 * mm)
        # Footer: the list's identity and full content hash, so a loose page can be matched to the system.
        canv.setStrokeColor(_HAIRLINE)
        canv.setLineWidth(0.5)
        canv.line(_MARGIN_X, 12 * mm, width - _MARGIN_X, 12 * mm)
        canv.setFillColor(_MUTED)
        _draw_segments(canv, _MARGIN_X, 8 * mm, footer, 7)
        canv.restoreState()

    return decorate


def render_pdf(view: ListView) -> bytes:
    """The list as a printable A4 (landscape) Japanese PDF; see the module docstring for its content."""
    _register_fonts()
    out = io.BytesIO()
    doc = BaseDocTemplate(
        out,
        pagesize=PAGE_SIZE,
        leftMargin=_MARGIN_X,
        rightMargin=_MARGIN_X,
        topMargin=_MARGIN_TOP,
        bottomMargin=_MARGIN_BOTTOM,
        title=f"{view.title} {view.branch_code} {view.branch_name} {view.business_date.isoformat()}",
        author="Shokai",
        subject=f"{view.title} 通番{view.sequence} 第{view.version}版 SHA-256 {view.content_sha256}",
        creator="Shokai",
        invariant=True,
        lang="ja-JP",
        initialFontName=FONT,
        initialFontSize=9,
    )
    frame = Frame(
        _MARGIN_X,
        _MARGIN_BOTTOM,
        _BODY_WIDTH,
        PAGE_SIZE[1] - _MARGIN_TOP - _MARGIN_BOTTOM,
        id="body",
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
    )
    doc.addPageTemplates([PageTemplate(id="list", frames=[frame], onPage=_page_decorations(view))])
    doc.build(_story(view), canvasmaker=_NumberedCanvas)
    return out.getvalue()
