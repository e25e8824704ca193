"""Japanese text: what is stored as typed, and the keys used to search and sort it.

Names and addresses are kept as people typed them (㈱, ①, 髙, ～): only spaces are tidied.
Search keys are folded so that every way of typing finds the same person: NFKC (half-width
katakana, full-width letters and digits), katakana → hiragana, lower case, no spaces, and the
common variant forms of kanji (髙 → 高, 﨑 → 崎, 邊/邉 → 辺, 齋/齊/斎 → 斉 …). The sort key
follows a Japanese dictionary (五十音): voiced and small kana sort with their plain letter.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache, wraps

_KATAKANA_TO_HIRAGANA = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}
_SPACES = re.compile(r"[\s\u3000]+")
_NON_DIGITS = re.compile(r"\D+")


# Variant forms of kanji common in Japanese names, folded to one form in search keys only
# (what people typed is kept). The pairs are the 旧字体/異体字 of the 常用漢字表 and 人名用漢字
# that appear in surnames and place names, and the IBM/NEC extension forms (髙, 﨑) that
# CP932 carries. (The ja-itaiji package was tried: its families join unrelated characters,
# e.g. 澤 with 途, and keep 斉 and 斎 apart, which people treat as one surname.)
_VARIANTS = {
    "髙": "高", "﨑": "崎", "嵜": "崎", "碕": "崎", "邊": "辺", "邉": "辺", "齋": "斉",
    "齊": "斉", "斎": "斉", "澤": "沢", "櫻": "桜", "濱": "浜", "濵": "浜", "廣": "広",
    "國": "国", "嶋": "島", "嶌": "島", "槇": "槙", "藪": "薮", "籔": "薮", "瀨": "瀬",
    "德": "徳", "惠": "恵", "榮": "栄", "實": "実", "龍": "竜", "瀧": "滝", "冨": "富",
    "眞": "真", "淺": "浅", "萬": "万", "與": "与", "圓": "円", "壽": "寿", "傳": "伝",
    "條": "条", "邨": "村", "鐵": "鉄", "禮": "礼", "靜": "静", "縣": "県", "舘": "館",
    "峯": "峰", "巖": "巌", "增": "増", "來": "来", "關": "関", "黑": "黒", "兒": "児",
    "晉": "晋", "恆": "恒", "戶": "戸", "淸": "清", "檜": "桧", "穗": "穂", "藏": "蔵",
    "豐": "豊", "塲": "場", "曻": "昇", "栁": "柳",
}
# Ideographic variation selectors (葛󠄀 …) say which glyph to draw, not which character.
# Variation selectors, and the invisible marks a name copied from a web page or a document can
# carry (zero-width spaces and joiners, direction marks, a byte-order mark).
_INVISIBLE = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef\u200b-\u200f\u2060\ufeff]")
_VARIANT_TABLE = str.maketrans({k: v for k, v in _VARIANTS.items() if k != v})


# ㈱ and (株) are how people shorten 株式会社: all three find each other.
_COMPANY = {"(株)": "株式会社", "(有)": "有限会社", "(社)": "社団法人", "(財)": "財団法人",
            "(医)": "医療法人", "(福)": "社会福祉法人", "(特非)": "特定非営利活動法人"}
_COMPANY_RE = re.compile("|".join(re.escape(k) for k in _COMPANY))


def _cached_when_short(longest: int, size: int):
    """Cache a function of a text for texts up to `longest` characters (the same names,
    words and codes come again and again: imports, search terms); a longer one (a stray cell
    of a file) is worked out and not kept. An empty text gives "" uncached."""
    def wrap(function):
        cached = lru_cache(maxsize=size)(function)

        @wraps(function)
        def text_function(text):
            if not text:
                return ""
            return cached(text) if len(text) <= longest else function(text)
        return text_function
    return wrap


@_cached_when_short(64, 1 << 16)
def fold(text: str | None) -> str:
    """Width-, kana-, case- and variant-insensitive form of text, without spaces or invisible
    marks (a search key)."""
    text = unicodedata.normalize("NFKC", text)
    text = _COMPANY_RE.sub(lambda m: _COMPANY[m.group(0)], text)
    text = text.translate(_KATAKANA_TO_HIRAGANA).lower().translate(_VARIANT_TABLE)
    return _SPACES.sub("", _INVISIBLE.sub("", text))


# 五十音 order: the sound without its voicing marks first (コンドウ after ゴトウ, as in a
# dictionary), small kana as their full-size letter; then the exact reading breaks ties.
_SMALL_KANA = str.maketrans("ぁぃぅぇぉっゃゅょゎゕゖ", "あいうえおつやゆよわかけ")
_VOICING = re.compile("[\u3099\u309a]")


def sort_key(reading: str | None) -> str:
    """A key that sorts readings (any kana) in Japanese dictionary order, byte by byte."""
    folded = fold(reading)
    plain = _VOICING.sub("", unicodedata.normalize("NFD", folded))
    plain = unicodedata.normalize("NFC", plain).translate(_SMALL_KANA)
    return f"{plain}\u0001{folded}"


# What people type between a phone number's parts besides "-": the long-vowel mark ー that a
# Japanese keyboard gives for the key, minus signs and dashes (ｰ and － are NFKC's already).
_PHONE_DASHES = str.maketrans(dict.fromkeys("ー‐‑‒–—―−﹣", "-"))


def phone_text(text: str | None) -> str:
    """A phone or fax number as stored and shown: ASCII digits and hyphens (０４２ー１２３ー
    ４５６７ → 042-123-4567), spaces tidied."""
    return clean(text).translate(_PHONE_DASHES)


# The eras a date may be written in (和暦): their first days. A year of an era counts from 1
# (元年), and a date before the era's first day, or on or after the next one's, is no date.
_ERAS = (("令和", "R", date(2019, 5, 1)), ("平成", "H", date(1989, 1, 8)),
         ("昭和", "S", date(1926, 12, 25)), ("大正", "T", date(1912, 7, 30)))
_ERA_DATE = re.compile(r"(?P<era>[^\d\s]+?)\s*(?P<year>\d{1,2}|元)\s*[年.\-/]\s*(?P<month>\d{1,2})\s*"
                       r"[月.\-/]\s*(?P<day>\d{1,2})\s*日?")
_WESTERN_DATE = re.compile(r"(?P<year>\d{4})\s*[年.\-/]\s*(?P<month>\d{1,2})\s*[月.\-/]\s*"
                           r"(?P<day>\d{1,2})\s*日?|(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})")


def japanese_date(text: str | None) -> date | None:
    """A date as people write it in Japan, or None when it is not one: 2026-04-01, 2026/4/1,
    20260401, 2026年4月1日, 令和8年4月1日 (元年 too), R8.4.1 or R8/4/1 as spreadsheets show
    it, full-width digits included. An era's date outside the era (平成31年5月1日) is none."""
    value = unicodedata.normalize("NFKC", text or "").strip()
    if found := _WESTERN_DATE.fullmatch(value):
        return _date(found["year"] or found["y"], found["month"] or found["m"],
                     found["day"] or found["d"])
    found = _ERA_DATE.fullmatch(value)
    for n, (name, letter, start) in enumerate(_ERAS if found else ()):
        if found["era"] in (name, letter, letter.lower()):
            year = start.year + (1 if found["year"] == "元" else int(found["year"])) - 1
            written = _date(year, found["month"], found["day"])
            ends = _ERAS[n - 1][2] if n else date.max  # the next era's first day
            return written if written and start <= written < ends else None
    return None


def _date(year, month, day) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def email_text(address: str | None) -> str:
    """An e-mail address as typed, made what mail can carry where it only looks different:
    letters, digits and signs typed full-width on a Japanese keyboard
    (ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ) become ASCII (NFKC), surrounding spaces go. A name in
    kanji before the @ stays as typed, for validation to refuse."""
    return unicodedata.normalize("NFKC", address or "").strip()


def email_key(address: str | None) -> str | None:
    """An e-mail address as it is looked up: as email_text makes it, case ignored (None when
    there is none)."""
    return email_text(address).lower() or None


def digits(text: str | None) -> str:
    """Only the digits of text (full-width digits included): phone numbers, postal codes."""
    if not text:
        return ""
    return _NON_DIGITS.sub("", unicodedata.normalize("NFKC", text))


def clean(text: str | None) -> str:
    """Trim and NFKC-normalise a single-line code-like value (a reference, a phone number):
    full-width digits and letters become ASCII. Not for names or addresses (see tidy)."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    return _SPACES.sub(" ", text).strip()


_POSTAL = re.compile(r"〒?\s*\d{3}\s*[-‐－ー−]?\s*\d{4}")


@_cached_when_short(16, 4096)  # (a town's few codes: each checked when tidied and validated)
def postal_digits(text: str | None) -> str | None:
    """The 7 digits of a Japanese postal code as people write it (〒188-0012, １８８－００１２,
    1880012), or None when it is not one."""
    value = unicodedata.normalize("NFKC", text).strip()
    if not value:
        return ""
    value = value.replace("〒", "").strip()
    if not _POSTAL.fullmatch(value):
        return None
    return digits(value)


def show_postal(code: str | None) -> str:
    """〒123-4567 for a stored postal code (as stored when it is not 7 digits)."""
    found = digits(code)
    if len(found) == 7:
        return f"〒{found[:3]}-{found[3:]}"
    return code or ""


def tidy(text: str | None) -> str:
    """Spaces tidied, every character kept as typed (full-width brackets and all): for
    titles and names of things, where NFKC would change what staff wrote."""
    return " ".join((text or "").split())


def same_label(one: str | None, other: str | None) -> bool:
    """Whether two names of things (categories) would read as the same to staff: the same
    after NFKC and case folding (（改） and (改), ＡＢＣ and abc). Each is kept as typed (tidy);
    only this comparison folds them."""
    return clean(one).casefold() == clean(other).casefold()


def to_hiragana(text: str | None) -> str:
    """Katakana as hiragana, everything else as it is."""
    return (text or "").translate(_KATAKANA_TO_HIRAGANA)


def is_kana(text: str) -> bool:
    """True when text has only kana (hiragana/katakana), long-vowel marks and spaces."""
    folded = fold(text)
    return bool(folded) and all(
        "\u3041" <= ch <= "\u3096" or ch in "ーゝゞ・" for ch in folded
    )
