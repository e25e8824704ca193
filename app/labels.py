"""Display labels for stored codes, translated lazily (Japanese is the source language)."""
from flask_babel import get_locale
from app.i18n import lazy_gettext as _l


def localized(name: str, name_en: str = "") -> str:
    """An admin-entered name in the current language (English only when one was given)."""
    locale = get_locale()
    if locale is not None and locale.language == "en" and name_en:
        return name_en
    return name

KIND = {"person": _l("個人"), "business": _l("事業所")}
STATUS = {
    "applied": _l("申込中"),
    "active": _l("活動中"),
    "paused": _l("休止中"),
    "withdrawn": _l("退会"),
    "declined": _l("見送り"),
}
DELIVERY = {
    "email": _l("メール"),
    "post": _l("郵送"),
    "both": _l("メールと郵送"),
    "none": _l("送付しない"),
}
JOINED_VIA = {
    "application": _l("本人の申込み"),
    "staff": _l("職員が登録"),
    "former_consultee": _l("元相談者"),
}
NEWSLETTER_STATUS = {
    "draft": _l("下書き"), "scheduled": _l("予約済み"), "sending": _l("送信中"),
    "paused": _l("一時停止中"), "sent": _l("送信済み"), "cancelled": _l("取り消し"),
}
CONCERN_STATUS = {
    "received": _l("受付"), "acknowledged": _l("確認済"), "in_progress": _l("対応中"),
    "connected": _l("つなぎ済"), "closed": _l("完了"), "duplicate": _l("重複"),
}
# What the reporter reads: how far it has come, in plain words.
CONCERN_STATUS_FOR_REPORTER = {
    "received": _l("受け付けました"), "acknowledged": _l("担当の職員が確認しました"),
    "in_progress": _l("対応しています"), "connected": _l("専門の窓口におつなぎしました"),
    "closed": _l("対応を終えました"), "duplicate": _l("同じ内容のご報告とあわせて対応しています"),
}
URGENCY = {"normal": _l("ふつう"), "soon": _l("早めに"), "urgent": _l("緊急")}
CONCERN_CHANNEL = {"web": _l("ウェブ"), "phone": _l("電話"), "visit": _l("訪問"), "fax": _l("FAX"),
                   "counter": _l("窓口")}
CONCERN_EVENT = {"created": _l("受付"), "status": _l("状態の変更"), "assigned": _l("担当者"),
                 "note": _l("内部メモ"), "message": _l("報告者へのメッセージ"),
                 "linked": _l("関連づけ"), "erased": _l("保存期間終了による消去")}
TRAINING_KIND = {"registration": _l("登録研修"), "communication": _l("コミュニケーション研修"),
                 "follow_up": _l("フォローアップ研修"), "other": _l("その他の研修")}
REGISTRATION_STATUS = {"confirmed": _l("参加確定"), "waitlisted": _l("キャンセル待ち"),
                       "cancelled": _l("取消し")}
ATTENDANCE = {"": _l("未記入"), "attended": _l("出席"), "no_show": _l("欠席")}
ROLE = {"admin": _l("事務局（管理者）"), "coordinator": _l("地域福祉コーディネーター")}
CHANGE_ACTION = {
    "created": _l("登録"),
    "updated": _l("変更"),
    "approved": _l("承認"),
    "declined": _l("見送り"),
    "withdrawn": _l("退会"),
    "imported": _l("CSV取込"),
    "applied": _l("申込み"),
    "unsubscribed": _l("メール配信停止"),
}
FIELD = {
    "kind": _l("種別"),
    "name": _l("氏名"),
    "kana": _l("ふりがな"),
    "business_name": _l("事業所名"),
    "business_kana": _l("事業所名のふりがな"),
    "business_category": _l("業種"),
    "contact_person": _l("担当者"),
    "email": _l("メールアドレス"),
    "phone": _l("電話番号"),
    "postal_code": _l("郵便番号"),
    "address": _l("住所"),
    "district": _l("地区"),
    "delivery": _l("通信の受け取り方"),
    "status": _l("状態"),
    "joined_via": _l("登録のきっかけ"),
    "joined_on": _l("登録日"),
    "registration_training_on": _l("登録研修の受講日"),
    "notes": _l("職員メモ"),
    "consent_version": _l("同意した個人情報の取扱い（版）"),
}


_BY_FIELD = {"kind": KIND, "status": STATUS, "delivery": DELIVERY, "joined_via": JOINED_VIA}


def value(field: str, stored: str) -> str:
    """A history value for display: codes of choice fields become their labels."""
    mapping = _BY_FIELD.get(field)
    if mapping and stored in mapping:
        return str(mapping[stored])
    return stored


def plain(mapping: dict) -> dict[str, str]:
    """The labels translated once, for templates that show them many times."""
    return {key: str(label) for key, label in mapping.items()}


def all_labels() -> dict:
    return {
        "KIND": KIND, "STATUS": STATUS, "DELIVERY": DELIVERY, "JOINED_VIA": JOINED_VIA,
        "ROLE": ROLE, "NEWSLETTER_STATUS": NEWSLETTER_STATUS, "CHANGE_ACTION": CHANGE_ACTION, "FIELD": FIELD,
        "CONCERN_STATUS": CONCERN_STATUS, "CONCERN_STATUS_FOR_REPORTER": CONCERN_STATUS_FOR_REPORTER,
        "URGENCY": URGENCY, "TRAINING_KIND": TRAINING_KIND,
        "REGISTRATION_STATUS": REGISTRATION_STATUS, "ATTENDANCE": ATTENDANCE, "CONCERN_CHANNEL": CONCERN_CHANNEL, "CONCERN_EVENT": CONCERN_EVENT,
        "localized": localized, "value": value, "plain": plain,
    }
