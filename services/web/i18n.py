"""English and Simplified Chinese (the sites are in Guangzhou and Shenzhen): the browser's language unless the
person chose one. A form's items speak with the data dictionary's words (the schema's `x-label`, `x-hint`,
`x-codes`), in the page's language."""

from collections.abc import Callable, Iterator

from fastapi import Request

from services.reporting.reports import datasets
from services.reporting.reports.endpoints import ASSESSMENTS
from services.reporting.reports.index import COLUMNS, PICTURES, REPORTS, exports
from services.web.problems import RULES, TYPES
from shared.contracts.access import Role
from shared.contracts.dictionary import Translated, walk
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.datamanagement import SdvStatus, SignatureStatus, SigningNeed
from shared.readmodels.states import QueryState, SubjectState, VisitStatus

LANGUAGES = ("en", "zh")
LANGUAGE_COOKIE = "trial_lang"

# key: (English, 简体中文)
TEXT: dict[str, tuple[str, str]] = {
    "app": ("NCT06646146 trial", "NCT06646146 临床试验"),
    "sign_in": ("Sign in", "登录"),
    "sign_out": ("Sign out", "退出"),
    "signed_in_as": ("Signed in as", "当前用户"),
    "language": ("中文", "English"),
    "home": ("Home", "首页"),
    "subjects": ("Subjects", "受试者"),
    "subject": ("Subject", "受试者"),
    "state": ("State", "状态"),
    "arm": ("Arm", "组别"),
    "eligible": ("Eligible", "符合入组"),
    "last_change": ("Last change", "最近更新"),
    "next_visit": ("Next visit (window)", "下次随访（时间窗）"),
    "new_subject": ("New subject: record consent", "新受试者：记录知情同意"),
    "subject_id": ("Subject id", "受试者编号"),
    "consent": ("Informed consent", "知情同意"),
    "consent_form_version": ("Consent form version", "知情同意书版本"),
    "reconsent_needed": (
        "The consent form was revised: the subject signs version {version} before the next visit form.",
        "知情同意书已修订：受试者须先签署{version}版，方可填写下一次访视表。",
    ),
    "reconsent_due": ("To sign the revised consent form", "待签署修订版知情同意书"),
    "since": ("Since", "起始日期"),
    "protocol_version": ("Protocol version", "方案版本"),
    "entered_under": ("Entered under protocol version", "填写时依据的方案版本"),
    "protocol_versions": ("Protocol versions", "方案版本"),
    "protocol_versions_compared": (
        "The versions this subject's records stand under, where they differ",
        "该受试者记录所依据的各方案版本之差异",
    ),
    "what_differs": ("What differs", "差异项"),
    "window_days": ("target day ± window (days)", "目标日 ± 时间窗（天）"),
    "forms_entered_under": ("The subject's forms entered under it", "依据该版本填写的表单"),
    "screening": ("Screening", "筛选"),
    "randomization": ("Randomization", "随机分组"),
    "randomize": ("Randomize", "随机分组"),
    "confirm_randomization": (
        "Randomize this subject? The allocation cannot be undone.",
        "确认对该受试者进行随机分组？分组结果不可撤销。",
    ),
    "confirm": ("Confirm", "确认"),
    "cancel": ("Cancel", "取消"),
    "save": ("Save", "保存"),
    "criteria": ("Eligibility criteria", "入选/排除标准"),
    "criterion": ("Criterion", "标准"),
    "outcome": ("Outcome", "结果"),
    "value": ("Value", "数值"),
    "item": ("Item", "项目"),
    # A criterion as it counts for the subject (an exclusion met fails), and the states a subject and a visit pass.
    # A refused item, said by its rule's code and its range ({low}, {high}, {unit}).
    "rule_missing": ("Required.", "必填。"),
    "rule_between": ("A number from {low} to {high} {unit}.", "请填写{low}至{high}{unit}之间的数字。"),
    "rule_above": ("A number above {low}, up to {high} {unit}.", "请填写大于{low}且不超过{high}{unit}的数字。"),
    "rule_number": ("A number.", "请填写数字。"),
    "rule_date_or_never": (
        "A date (year-month-day), or never.",
        "请填写日期（年-月-日）或“从未”。",
    ),
    "rule_date": ("A date: year-month-day, from 1900 to 2199.", "请填写日期（年-月-日），1900年至2199年之间。"),
    "rule_choice": ("Pick one of the choices.", "请从选项中选择。"),
    "rule_datetime": (
        "A date and a time, e.g. 2026-12-07 08:30.",
        "请填写日期和时间，例如2026-12-07 08:30。",
    ),
    "rule_length": ("From {low} to {high} characters.", "请填写{low}至{high}个字符。"),
    "rule_pattern": ("Not written as this item takes it: see its hint.", "格式不符合要求：请参阅该项说明。"),
    "rule_other": ("Not accepted: {message}", "此项未被接受，请检查后重新填写。"),
    "criterion_passes": ("Passes", "符合"),
    "criterion_fails": ("Fails", "不符合"),
    "criterion_missing": ("Not answered: waits for an answer", "未填写：等待回答"),
    "state_consented": ("Consented", "已知情同意"),
    "state_eligible": ("Eligible", "符合入组"),
    "state_screen_failed": ("Screen failed", "筛选失败"),
    "state_consent_withdrawn": ("Consent withdrawn", "已撤回知情同意"),
    "state_consent_declined": ("Consent declined", "拒绝知情同意"),
    "state_randomized": ("Randomized", "已随机"),
    "state_treated": ("Operated", "已手术"),
    "state_withdrawn": ("Withdrawn", "已退出"),
    "state_completed": ("Completed the study", "已完成研究"),
    "state_died": ("Died", "死亡"),
    "role_site_coordinator": ("site coordinator", "研究协调员"),
    "role_investigator": ("investigator", "研究者"),
    "role_monitor": ("monitor", "监查员"),
    "role_data_manager": ("data manager", "数据管理员"),
    "role_safety_officer": ("safety officer", "安全官"),
    "role_statistician": ("statistician", "统计师"),
    "role_outcome_assessor": ("blinded outcome assessor", "盲态结局评估者"),
    "assessments": ("Photographs to assess", "待评估照片"),
    "assessments_hint": (
        "Count the surviving grafts and measure the hair density on each visit's photographs. Nothing here says the "
        "subject's group: keep it so.",
        "请根据每次随访的照片计数存活移植毛囊并测量毛发密度。此页不显示受试者分组，请保持盲态。",
    ),
    "assessed": ("Assessed", "已评估"),
    "visit_scheduled": ("Scheduled", "待随访"),
    "visit_completed": ("Completed", "已完成"),
    "visit_missed": ("Missed", "失访"),
    "visit_not_expected": ("Not expected", "无需随访"),
    "visits": ("Visit schedule", "随访计划"),
    "visit": ("Visit", "随访"),
    "window": ("Window", "时间窗"),
    "status": ("Status", "状态"),
    "adverse_events": ("Adverse events", "不良事件"),
    "photographs": ("Scalp photographs", "头皮照片"),
    "values_from": (
        "Values: {blind} counted by the blinded assessor on the photographs, {site} recorded by the site",
        "数值来源：{blind}例由盲态评估者根据照片计数，{site}例由研究中心记录",
    ),
    "day_0": ("Day of surgery", "手术日"),
    "photograph_visit": ("Visit", "随访"),
    "photograph_view": ("View", "拍摄角度"),
    "photograph_file": ("Photograph (JPEG or PNG, at most 20 MB)", "照片（JPEG或PNG，不超过20 MB）"),
    "photograph_upload": ("Upload the photograph", "上传照片"),
    "photograph_kept": (
        "Kept without its metadata (location, camera); named by its fingerprint",
        "保存时已去除元数据（位置、相机信息），以其指纹标识",
    ),
    "queries": ("Queries", "质疑"),
    "answer": ("Answer", "回复"),
    "surgery": ("Surgery", "手术"),
    "adverse_event": ("Report an adverse event", "报告不良事件"),
    "open_query": ("Open a query", "提出质疑"),
    "form": ("Form", "表单"),
    "field": ("Field", "字段"),
    "query_on": ("On the form, or one of its items", "质疑对象：表单或其中一项"),
    "text": ("Text", "内容"),
    "close": ("Close", "关闭"),
    "reopen": ("Re-open", "重新打开"),
    "signatures": ("Signatures", "电子签名"),
    "sign": ("Sign", "签名"),
    "sign_eligibility": ("Sign eligibility", "签署入组资格"),
    "meaning": ("By signing I state", "签名即表示"),
    "term": ("Term", "术语"),
    "grade": ("Grade", "分级"),
    "serious": ("Serious", "严重"),
    "follow_up": ("Follow-up of an adverse event", "不良事件随访"),
    "withdrawal": ("Withdraw the subject", "受试者退出"),
    "verify": ("Verified against source", "已核对源数据"),
    "forms": ("Forms and their verification", "表单及源数据核查"),
    "lock": ("Lock the casebook", "锁定病例报告表"),
    "unlock": ("Unlock the casebook (say why)", "解锁病例报告表（请说明原因）"),
    "reason": ("Reason", "原因"),
    "to_sign": ("To sign", "待签名"),
    "locked": ("Locked", "已锁定"),
    "correct": ("Correct", "更正"),
    "correction": ("Correction", "数据更正"),
    "why_correct": ("Why is it corrected? (kept in the audit trail)", "更正原因（记入稽查轨迹）"),
    "sae_inbox": ("Serious adverse events", "严重不良事件"),
    "open_alerts": ("Open SAE alerts, oldest first", "未确认的严重不良事件警报（最早在前）"),
    "acknowledge": ("Acknowledge", "确认收到"),
    "deadline": ("Report due by", "报告截止"),
    "late": ("Late", "逾期"),
    "escalations": ("Escalations", "升级次数"),
    "worklist": ("Monitoring work list", "监查工作清单"),
    "to_verify": ("Forms waiting for source data verification, oldest first", "待源数据核查的表单（最早在前）"),
    "days_open": ("Days open", "已开放天数"),
    "all_sites": ("All sites", "全部中心"),
    "reports": ("Reports", "报告"),
    "report_page": (
        "The report page: primary endpoint, queries and verification tables",
        "报告页：主要终点、质疑及源数据核查表",
    ),
    "exports": ("Exports", "数据导出"),
    "report_page_title": ("The primary endpoint and the data-management tables", "主要终点及数据管理报表"),
    "primary_endpoint": ("Primary endpoint", "主要终点"),
    "too_few_to_compare": ("Too few subjects to compare", "受试者过少，无法比较"),
    "data_management": ("Data management", "数据管理"),
    "queries_by_site": ("Open queries by site, form and days open", "按中心、表单及开放天数统计的未关闭质疑"),
    "sdv_by_site": ("Source data verification by site", "各中心源数据核查"),
    "pictures": ("Pictures", "图表"),
    "site": ("Site", "中心"),
    "sites": ("Sites", "中心"),
    "database_lock": ("Lock the database for analysis", "锁定数据库以供分析"),
    "database_lock_text": (
        "Once every casebook is locked: the exports are then made as of the lock.",
        "所有病例报告表锁定后方可执行：此后导出的数据均以锁定时为准。",
    ),
    "calendar": ("Visits calendar", "随访日历"),
    "overdue": ("Overdue: the window has closed", "已逾期：时间窗已关闭"),
    "due_this_week": ("Due: the window is open or opens within 7 days", "待随访：时间窗已开放或7天内开放"),
    "yes": ("Yes", "是"),
    "no": ("No", "否"),
    "not_known": ("Not known", "未知"),
    "none": ("None", "无"),
    "never": ("Never", "从未"),
    # What a subject's last change was, where no form records it (a form's record says its form's title).
    "event_SubjectRandomized": ("Randomized", "随机分组"),
    "event_RandomizationInvalidated": ("Randomization invalidated", "随机分组作废"),
    "event_SubjectCompletedStudy": ("Completed the study", "完成研究"),
    "event_CasebookLocked": ("Casebook locked", "病例报告表锁定"),
    "event_CasebookUnlocked": ("Casebook unlocked", "病例报告表解锁"),
    "event_DatabaseLocked": ("Database locked for analysis", "数据库锁定（用于分析）"),
    "event_ProtocolAmendmentDeployed": ("Protocol amendment deployed", "方案修订已部署"),
    "event_ProtocolAmendmentEffective": ("Protocol amendment in force at the site", "方案修订在本中心生效"),
    "event_EnrollmentClosed": ("Enrollment closed", "入组结束"),
    "event_FormRecorded": ("Form recorded", "表单记录"),
    "event_ScalpPhotographRecorded": ("Scalp photograph recorded", "头皮照片已记录"),
    "event_FormVerified": ("Source data verified", "源数据核查"),
    "event_ProtocolDeviationRecorded": ("Protocol deviation", "方案偏离"),
    "event_QueryOpened": ("Query opened", "提出质疑"),
    "event_QueryAnswered": ("Query answered", "回复质疑"),
    "event_QueryClosed": ("Query closed", "关闭质疑"),
    "event_QueryReopened": ("Query re-opened", "重新打开质疑"),
    "event_RandomizationListCommitted": ("Randomization list committed", "随机分配表锁定"),
    "event_SeriousAdverseEventAlertRaised": ("SAE alert raised", "严重不良事件警报发出"),
    "event_SeriousAdverseEventAlertEscalated": ("SAE alert escalated", "严重不良事件警报升级"),
    "event_SeriousAdverseEventAcknowledged": ("SAE alert acknowledged", "严重不良事件警报已知悉"),
    "event_SignatureApplied": ("Electronic signature", "电子签名"),
    "event_UserAccessRevoked": ("User access revoked", "用户权限撤销"),
    "event_UserAccessRestored": ("User access restored", "用户权限恢复"),
    "event_VisitMissed": ("Visit missed", "随访缺失"),
    "age_over 30": ("over 30", "30天以上"),
    "query_open": ("Open", "待回复"),
    "query_answered": ("Answered", "已回复"),
    "query_closed": ("Closed", "已关闭"),
    "query_reopened": ("Re-opened", "已重新打开"),
    "step_opened": ("Opened", "提出"),
    "step_answered": ("Answered", "回复"),
    "step_closed": ("Closed", "关闭"),
    "step_reopened": ("Re-opened", "重新打开"),
    "signature_eligibility": ("Eligibility", "入组资格"),
    "signature_casebook": ("Casebook", "病例报告表"),
    "signature_valid": ("valid", "有效"),
    "signature_invalidated_by_change": ("invalidated by a later change", "因后续更改而失效"),
    "sdv_not_verified": ("Not verified", "未核查"),
    "sdv_verified": ("Verified", "已核查"),
    "sdv_changed_since_verification": ("Changed since verified", "核查后已更改"),
    "required": ("required", "必填"),
    "problem": ("The form was not accepted", "表单未被接受"),
    "recorded": ("Recorded", "已记录"),
    "not_allowed": ("Your role does not do this here.", "您的角色无权执行此操作。"),
    "sign_in_failed": ("Sign-in did not succeed", "登录未成功"),
    "signed_out": ("You are signed out", "您已退出"),
    "sign_out_failed": (
        "Sign-out could not reach the server: you are still signed in. Try again.",
        "无法连接服务器完成退出：您仍处于登录状态。请重试。",
    ),
    "another_person": (
        "Another person signed in: a signature needs the same person to sign in again",
        "登录的是另一位用户：签名须由本人重新登录",
    ),
    "back": ("Back", "返回"),
    "matrix": ("Subject matrix", "受试者进度总览"),
    "acknowledged_alerts": ("Acknowledged alerts, the latest first", "已知悉的警报（最新在前）"),
    "acknowledged_by": ("Acknowledged by", "知悉人"),
    "acknowledged_at": ("Acknowledged at", "知悉时间"),
    # What a step does, said before it is taken.
    "confirm_lock": (
        "Lock the casebook of {subject}? No form can be entered or corrected until a data manager unlocks it, "
        "with a reason that the audit trail keeps.",
        "确认锁定{subject}的病例报告表？锁定后不能录入或更正任何表单，直至数据管理员填写原因解锁（原因记入稽查轨迹）。",
    ),
    "confirm_unlock": (
        "Unlock the casebook of {subject}? Its forms can be corrected again; the reason is kept in the audit trail.",
        "确认解锁{subject}的病例报告表？解锁后表单可再次更正；原因记入稽查轨迹。",
    ),
    "confirm_withdrawal": (
        "Withdraw {subject} from the study? Visits after the withdrawal date are no longer expected; adverse events "
        "are still reported and followed up.",
        "确认{subject}退出研究？退出日期之后的随访不再进行；不良事件仍须报告和随访。",
    ),
    "confirm_acknowledgement": (
        "Acknowledge the serious adverse event alert for {subject} ({term})? It leaves the open alerts; your name "
        "and the time are recorded.",
        "确认已知悉{subject}的严重不良事件警报（{term}）？该警报将移出待处理列表，您的姓名和时间将被记录。",
    ),
    "confirm_database_lock": (
        "Lock the database for analysis? Every casebook is locked, nobody new is enrolled, and the exports are "
        "made as of this moment.",
        "确认锁定数据库用于分析？所有病例报告表将被锁定，不再入组新受试者，导出数据以此刻为准。",
    ),
    "records": ("Records", "记录数"),
    "sign_casebook": ("Sign the casebook", "签署病例报告表"),
    "signing_not_signed": ("Not signed yet", "尚未签名"),
    "signing_changed_since_signed": ("A record it covered changed since it was signed", "签名后所涵盖的记录已更改"),
    "actions": ("Actions", "操作"),
    "source_verified": ("Source verified", "源数据核查"),
    "tick_verified": ("checked", "已核对"),
    "verify_items": ("Mark the ticked items verified against source", "将勾选的项目标记为已核对源数据"),
    "values": ("Recorded values", "记录的数值"),
    "history": ("Changes (old → new)", "修改记录（原值 → 新值）"),
    "raise_query": ("Raise a query here", "在此提出质疑"),
    "queries_on_form": ("Queries on the whole form", "针对整张表单的质疑"),
    "records_of_form": ("Every record of this form", "本表单的全部记录"),
    "verify_form": ("Verified against source: mark this record verified", "已核对源数据：将本记录标记为已核查"),
    "matrix_hint": (
        "Each subject's forms in the protocol's order; a cell opens its form.",
        "按方案顺序列出每位受试者的表单；点击单元格打开该表单。",
    ),
    "filter": ("Filter", "筛选"),
    "subject_state": ("Subject's state", "受试者状态"),
    "form_status": ("A form's status", "表单状态"),
    "any": ("Any", "全部"),
    "cell_not_started": ("Not started", "未开始"),
    "cell_entered": ("Entered", "已录入"),
    "cell_out_of_window": ("Out of window", "超窗"),
    "cell_verified": ("Verified", "已核查"),
    "cell_signed": ("Signed", "已签名"),
    "cell_query_open": ("Query open", "有未关闭质疑"),
    "cell_locked": ("Locked", "已锁定"),
    "cell_missed": ("Missed", "失访"),
    "cell_not_expected": ("Not expected", "无需填写"),
    "open_queries_n": ("{n} open", "{n}条未关闭"),
    "outside_window": ("outside its window", "超出时间窗"),
    # What comes next for a subject, as its state says it.
    "next_awaiting_judgement": ("Awaiting the investigator's judgement ({codes})", "等待研究者判断（{codes}）"),
    "next_to_screen": ("To screen", "待筛选"),
    "next_reconsent": ("To sign the revised consent form, version {version}", "待签署修订版知情同意书（{version}版）"),
    "next_rescreen": ("Screen failed: may be screened again", "筛选失败：可重新筛选"),
    "next_to_randomize": ("Ready to randomize", "可进行随机分组"),
    "next_surgery": ("Surgery to record", "待记录手术"),
    "next_visit_due": ("Next: visit {visit}", "下一步：{visit}随访"),
    "next_ended": ("Participation ended", "已结束参与"),
    "next_step": ("Next step", "下一步"),
    "audit_trail": ("Audit trail", "稽查轨迹"),
    "audit_hint": (
        "Every fact as recorded, oldest first: who, when (the site's time), what and why.",
        "按记录顺序列出每项事实：何人、何时（研究中心当地时间）、何事及原因。",
    ),
    "from_day": ("From (day)", "起始日期"),
    "to_day": ("To (day, included)", "截止日期（含当日）"),
    "when": ("When", "时间"),
    "what": ("What", "事项"),
    "who": ("Who", "操作人"),
    "first_page": ("First page", "第一页"),
    "next_page": ("Next page", "下一页"),
    "check_before_saving": ("Please check before saving", "保存前请核对"),
    "checked_against_source": (
        "I have checked these values against the source: save them as entered",
        "我已与源文件核对：按所填内容保存",
    ),
    "there_is_a_problem": ("There is a problem: the form was not saved", "存在问题：表单未保存"),
    "judgement_reason": ("The investigator's judgement ({codes})", "研究者判断（{codes}）"),
    "give_judgement": (
        "Give the investigator's judgement ({codes}) on this screening",
        "对本次筛选给出研究者判断（{codes}）",
    ),
    "site_time": ("Dates are the site's, in its time zone", "日期均为研究中心当地日期"),
}


# A report's columns whose values are names and ids as they are (a person's, a record's): never translated.
VERBATIM_COLUMNS = frozenset(
    {"actor", "opened_by", "subject_id", "site", "event_id", "causation_id", "correlation_id", "query_id",
     "alert_id", "deviation_id", "version", "form_version", "term", "text"}
)  # fmt: skip
# A report's columns whose values are codes, and the prefixes of their words above.
CODED_COLUMNS: dict[str, tuple[str, ...]] = {
    "state": ("state_", "query_"),
    "step": ("step_",),
    "sdv": ("sdv_",),
    "status": ("visit_", "signature_"),
    "actor_role": ("role_",),
    "kind": ("signature_",),
    "age": ("age_",),
    "event_type": ("event_",),
}


def language(request: Request) -> str:
    """The person's choice, else the browser's first language we have, else English."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "en"


def translator(lang: str) -> Callable[..., str]:
    """`t(key)` in the language, `t(key, fallback)` where the key may have no translation (a form field)."""
    index = LANGUAGES.index(lang)

    def t(key: str, fallback: str | None = None) -> str:
        found = TEXT.get(key)
        return found[index] if found else (fallback if fallback is not None else key)

    return t


def english_catalogue(protocol: ProtocolDefinition) -> frozenset[str]:
    """Every English word and sentence a page may show that has its own Simplified Chinese: the app's, the
    protocol's (criteria, visits), the data dictionary's, the rule messages; and the codes of states, outcomes
    and roles, which a page never shows raw. A Chinese page holding one of them is not translated."""
    return frozenset(text for text in _english(protocol) if any(c.isalpha() for c in text))


def _english(protocol: ProtocolDefinition) -> Iterator[str]:
    for catalogue in (TEXT, RULES, TYPES):
        yield from (en for en, zh in catalogue.values() if en != zh and "{" not in en)
    for c in protocol.eligibility.criteria.values():
        yield from (en for en, zh in ((c.label, c.label_zh), (c.text, c.text_zh)) if en != zh)
    yield from (visit.name for visit in protocol.schedule.follow_up if visit.name != visit.name_zh)
    dictionary = protocol.forms
    words: list[Translated | None] = [form.title for form in dictionary.forms.values()]
    listed = (*PICTURES, *REPORTS, *exports(datasets.names(dictionary)))
    words += [title for _, title in listed] + list(COLUMNS.values())
    yield from (a.param for a in ASSESSMENTS)
    for form in dictionary.forms.values():
        for _, item in walk(form.items):
            words += [item.label, item.hint]
    words += [code.decode for codes in dictionary.code_lists.values() for code in codes]
    yield from (w.en for w in words if w is not None and w.en != w.zh)
    for codes in (SubjectState, VisitStatus, QueryState, SdvStatus, SignatureStatus, SigningNeed, Role):
        yield from (str(code) for code in codes)
    yield from ("met", "not_met", "missing")
