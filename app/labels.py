"""Display labels for stored codes, translated lazily (Japanese is the source language)."""
from typing import NamedTuple

from app.i18n import current_language
from app.i18n import lazy_gettext as _l


def localized(name: str, name_en: str = "") -> str:
    """An admin-entered name in the current language (English only when one was given)."""
    return name_en if name_en and current_language() == "en" else name


class Choice(NamedTuple):
    """An entry of a pick list read once and kept for a while (in the cache): an admin-named
    thing's id and names, without the database object."""
    id: int
    name: str
    name_en: str = ""

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
                 "linked": _l("関連づけ"), "erased": _l("保存期間終了による消去"),
                 "referral": _l("つなぎ"), "help": _l("協力のお願い")}
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
    "bounced": _l("メールが届かないため保留"),
}
FIELD = {
    "kind": _l("種別"),
    "name": _l("氏名"),
    "kana": _l("ふりがな"),
    "business_name": _l("事業所名"),
    "business_kana": _l("事業所名のふりがな"),
    "business_category": _l("業種"),
    "can_help": _l("協力できること"), "help_times": _l("協力できる時間帯"),
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


# The audit log: what each recorded action means, in the reader's language.
AUDIT_ACTION = {
    "supporter.view": _l("推進員の記録を見た"), "supporter.export": _l("推進員名簿をCSVに書き出した"),
    "supporter.print": _l("推進員名簿を印刷した"), "supporter.import": _l("推進員をCSVから取り込んだ"),
    "supporter.create": _l("推進員を登録した"), "supporter.approve": _l("申込みを承認した"),
    "supporter.decline": _l("申込みを見送った（個人情報を消去）"),
    "supporter.withdraw": _l("退会の手続きをした（個人情報を消去）"),
    "supporter.link_request": _l("推進員がログイン用リンクを求めた"),
    "concern.view": _l("気になることの記録を見た"), "concern.export": _l("気になることをCSVに書き出した"),
    "concern.status": _l("気になることの状態を変えた"), "concern.assign": _l("気になることの担当者を決めた"), "concern.erase": _l("保存期間を過ぎた個人情報を消去した"),
    "concern_category.create": _l("気になることの分類を追加した"),
    "concern_category.update": _l("気になることの分類を変えた"),
    "training.roster": _l("研修の名簿を見た"), "training.sign_up": _l("研修に申し込んだ"),
    "training.cancel": _l("研修の申込みを取り消した"), "training.save": _l("研修を保存した"),
    "training.session_add": _l("研修の回を追加した"), "training.session_change": _l("研修の回を変えた"),
    "training.session_cancel": _l("研修の回を中止した"),
    "newsletter.send": _l("通信の送信を始めた"), "newsletter.schedule": _l("通信の送信を予約した"),
    "newsletter.cancel": _l("通信の送信を取り消した"), "newsletter.copy": _l("通信の写しを作った"), "newsletter.labels": _l("宛名ラベルを印刷した"),
    "mail.undelivered_view": _l("届かなかったメールの一覧を見た"), "mail.retry": _l("メールを再送した"),
    "staff.create": _l("職員を登録した"), "staff.update": _l("職員の情報を変えた"),
    "staff.cover": _l("一時的な応援の圏域を追加した"), "staff.cover_end": _l("一時的な応援の圏域を外した"),
    "category.create": _l("業種を追加した"), "category.update": _l("業種を変えた"),
    "station.contact": _l("ステーションの住所・電話番号を変えた"),
    "partner.save": _l("つなぎ先を保存した"), "partner.import": _l("つなぎ先をCSVから取り込んだ"),
    "partner.export": _l("つなぎ先をCSVに書き出した"),
    "referral.create": _l("つなぎ（紹介）を記録した"), "referral.update": _l("つなぎの経過を記録した"),
    "referral.sheet": _l("連絡票を印刷した"), "help.ask": _l("協力をお願いした"),
    "referral.figures": _l("つなぎの集計を書き出した"),
}
AUDIT_TARGET = {
    "supporter": _l("推進員"), "concern": _l("気になることの記録"), "staff_user": _l("職員"),
    "newsletter": _l("通信"), "training": _l("研修（コース）"), "training_session": _l("研修の回"),
    "training_registration": _l("研修の申込み"), "outbox_message": _l("メール"),
    "supporter_import": _l("CSV取込"), "concern_category": _l("分類"),
    "business_category": _l("業種"), "agency": _l("つなぎ先"), "referral": _l("つなぎ"),
    "help_request": _l("協力のお願い"), "station": _l("ステーション"),
}
# What supporters and businesses can help with (協力できること).
HELP_KIND = {
    "watch": _l("見守り・声かけ"), "talk": _l("話し相手"), "shopping": _l("買い物"),
    "escort": _l("移動の付き添い"), "cleanup": _l("片付け"), "garden": _l("植木・庭"),
    "housing": _l("住まい探し"), "repair": _l("修繕"), "other": _l("その他"),
}
HELP_STATUS = {"asked": _l("お願い中"), "accepted": _l("引き受け"), "declined": _l("見送り"),
               "withdrawn": _l("取り下げ")}
# Partner agencies (つなぎ先) by kind.
AGENCY_KIND = {
    "houkatsu": _l("地域包括支援センター"), "life_support": _l("生活サポート相談窓口"),
    "disability": _l("障害者相談支援"), "children": _l("子ども家庭支援センター"),
    "minsei": _l("民生委員・児童委員"), "health_center": _l("保健所"), "medical": _l("医療機関"),
    "police_fire": _l("警察・消防"), "other": _l("その他"),
}
# Referrals: how they were made, on what basis, and how far they have come.
REFERRAL_METHOD = {"phone": _l("電話"), "fax": _l("FAX"), "visit": _l("訪問"),
                   "meeting": _l("会議・同行")}
REFERRAL_CONSENT = {
    "consent": _l("本人同意あり"),
    "vital": _l("本人同意なし（生命・身体の保護のため）"),
    "meeting": _l("支援会議での共有"),
    "anonymous": _l("個人が分からない形で相談"),
}
REFERRAL_STATUS = {"requested": _l("依頼中"), "accepted": _l("受理"), "in_progress": _l("対応中"),
                   "done": _l("終了"), "returned": _l("対象外（戻り）")}
FILTER_NAME = {
    "q": _l("検索"), "area_ids": _l("圏域"), "area_id": _l("圏域"), "district_id": _l("地区"),
    "station_id": _l("ステーション"), "status": _l("状態"), "category_id": _l("分類"),
    "assignee": _l("担当者"), "overdue": _l("確認期限切れのみ"), "urgency": _l("急ぎ具合"),
    "kind": _l("種別"), "delivery": _l("受け取り方"),
    "with_unplaced": _l("地区不明のものも含む"),
}

_BY_FIELD = {"kind": KIND, "status": STATUS, "delivery": DELIVERY, "joined_via": JOINED_VIA}


def value(field: str, stored: str) -> str:
    """A history value for display: codes of choice fields become their labels."""
    mapping = _BY_FIELD.get(field)
    if mapping and stored in mapping:
        return str(mapping[stored])
    if field == "can_help" and stored:
        return "、".join(str(HELP_KIND.get(code, code)) for code in stored.split(","))
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
        "AUDIT_ACTION": AUDIT_ACTION, "AUDIT_TARGET": AUDIT_TARGET,
        "AGENCY_KIND": AGENCY_KIND, "REFERRAL_METHOD": REFERRAL_METHOD,
        "REFERRAL_CONSENT": REFERRAL_CONSENT, "REFERRAL_STATUS": REFERRAL_STATUS,
        "HELP_KIND": HELP_KIND, "HELP_STATUS": HELP_STATUS,
    }
