"""What a refusal says to the person, in the page's language: by the rule code the gateway's problem+json carries
(a trial rule: `visit.once`), else by the problem's type (the gateway's own: `forbidden`). The gateway's `detail`
stays the English record of the specifics; a page speaks in these words."""

from typing import Any

# Where the gateway's problem types live (`/problems/<type>`, `/problems/rule/<code>`), as its OpenAPI says.
PROBLEMS = "/problems/"

# rule code: (English, 简体中文)
RULES: dict[str, tuple[str, str]] = {
    "IN09": ("There is no informed consent for this subject yet.", "该受试者尚未签署知情同意。"),
    "IN09.before_screening": (
        "The screening is dated before the informed consent.",
        "筛选日期早于知情同意日期。",
    ),
    "access.not_revoked": ("This person's access is not revoked.", "该用户的访问权限未被撤销。"),
    "access.own": ("Nobody may revoke their own access.", "不能撤销自己的访问权限。"),
    "ae.aware_after_onset": (
        "The site cannot have become aware of the event before it began.",
        "获知时间不能早于事件开始时间。",
    ),
    "ae.death_consistent": (
        "Death, a fatal outcome and grade 5 must agree.",
        "死亡、结局为死亡与5级必须一致。",
    ),
    "ae.known": ("There is no such adverse event for this subject.", "该受试者无此不良事件。"),
    "alert.known": ("There is no such alert.", "无此警报。"),
    "casebook.form": ("The subject has no such form recorded.", "该受试者未记录此表单。"),
    "casebook.locked": (
        "The subject's casebook is locked: unlock it first, with a reason.",
        "该受试者的病例报告表已锁定：请先说明原因并解锁。",
    ),
    "casebook.locked_already": ("The casebook is locked already.", "病例报告表已锁定。"),
    "casebook.not_locked": ("The casebook is not locked.", "病例报告表未锁定。"),
    "casebook.queries_closed": (
        "Close every query before locking the casebook.",
        "锁定病例报告表前须关闭所有质疑。",
    ),
    "consent.declined": ("The person declined to consent.", "该人员已拒绝知情同意。"),
    "consent.form_version": (
        "This consent form version is not approved for the trial.",
        "该知情同意书版本未获批准。",
    ),
    "consent.current_version": (
        "The consent form was revised: the subject signs the new version before anything further in the trial.",
        "知情同意书已修订：受试者须先签署新版本，方可继续试验。",
    ),
    "amendment.follows_the_latest_version": (
        "An amendment follows the latest version of the protocol.",
        "方案修订须基于最新的方案版本。",
    ),
    "amendment.valid": (
        "The amendment cannot run the trial as written: see the item named.",
        "该方案修订无法按所写内容执行试验：请查看所指项目。",
    ),
    "consent.once_per_form_version": (
        "Consent on this form version is recorded already.",
        "该版本的知情同意已记录。",
    ),
    "consent.refusal_before_consent": (
        "The subject has consented already: a refusal cannot follow.",
        "受试者已签署知情同意，不能再记录拒绝。",
    ),
    "consent.signed": (
        "The subject or a legal representative must sign the consent form.",
        "知情同意书须由受试者本人或其法定代理人签署。",
    ),
    "consent.withdrawal_after_signing": (
        "The withdrawal is dated before the consent was signed.",
        "撤回日期早于知情同意签署日期。",
    ),
    "consent.withdrawn": ("The subject has withdrawn consent.", "受试者已撤回知情同意。"),
    "correction.current_version": (
        "The record was corrected by someone else meanwhile: open it again and correct the current one.",
        "该记录已被他人更正：请重新打开并更正当前版本。",
    ),
    "correction.reason": ("Say why the record is corrected.", "请说明更正原因。"),
    "correction.record": ("There is no such record to correct.", "无此可更正的记录。"),
    "correction.version": (
        "A correction names the record it corrects: open the record and correct it from there.",
        "更正须指明被更正的记录：请打开该记录后再更正。",
    ),
    "database.casebooks_locked": (
        "The database is locked once every casebook is locked.",
        "所有病例报告表锁定后方可锁定数据库。",
    ),
    "database.locked": (
        "The database is locked for analysis: nothing more is recorded.",
        "数据库已锁定以供分析，不再接受新记录。",
    ),
    "date.not_after_screening": ("The date is after the screening date.", "日期晚于筛选日期。"),
    "date.not_future": ("The date or time is in the future.", "日期或时间不能晚于当前。"),
    "delegation.causality": (
        "Causality is assessed by the investigator.",
        "因果关系须由研究者评估。",
    ),
    "delegation.investigator_judgement": (
        "This judgement is the investigator's.",
        "该项须由研究者判断。",
    ),
    "enrollment.cap": ("Enrollment is full: the trial has all its subjects.", "入组已满。"),
    "form.known": ("There is no such form at this visit.", "此随访无该表单。"),
    "form.answer": ("The form does not take this answer.", "该表单不接受此回答。"),
    "form.not_collected": (
        "This item is not collected for this subject.",
        "该受试者无需填写此项。",
    ),
    "form.answer_required": ("A required item has no answer.", "有必填项未填写。"),
    "form.once": ("This form is recorded at this visit already.", "该表单在此随访已记录。"),
    "form.reference": ("The subject has no such record.", "该受试者无此记录。"),
    "form.end_after_start": ("The end date is before the start date.", "结束日期早于开始日期。"),
    "photograph.view": ("This is not one of the standard views.", "这不是规定的拍摄角度。"),
    "photograph.once": ("This photograph is recorded already.", "该照片已记录。"),
    "assessment.photographs": ("This visit has no photographs to assess.", "该随访没有可评估的照片。"),
    "assessment.once": ("This visit is assessed already.", "该随访已评估。"),
    "form.ongoing_without_end": (
        "An entry that is still ongoing has no end date.",
        "仍在持续的条目不应填写结束日期。",
    ),
    "procedure.after_randomization": (
        "The surgery is dated before the randomization.",
        "手术日期早于随机分组日期。",
    ),
    "procedure.once": (
        "The surgery is recorded already: correct that record instead.",
        "手术已记录：如需修改请更正原记录。",
    ),
    "query.awaiting_answer": ("The query is not waiting for an answer.", "该质疑不在待回复状态。"),
    "query.field": ("The form has no such item.", "该表单无此项目。"),
    "query.known": ("There is no such query.", "无此质疑。"),
    "query.open": ("The query is closed.", "该质疑已关闭。"),
    "query.opener": (
        "Only the person who opened the query may close or re-open it.",
        "只有提出质疑的人员可以关闭或重新打开该质疑。",
    ),
    "query.reopen_answered_or_closed": (
        "Only an answered or closed query can be re-opened.",
        "只有已回复或已关闭的质疑可以重新打开。",
    ),
    "query.text": ("Write the query's text.", "请填写质疑内容。"),
    "randomization.invalidated": (
        "The subject's randomization was invalidated.",
        "该受试者的随机分组已作废。",
    ),
    "randomization.invalidated_once": (
        "The randomization is invalidated already.",
        "该随机分组已作废。",
    ),
    "randomization.list_exhausted": (
        "No allocation is left for this site: tell the trial's statistician.",
        "该中心的随机分配表已用尽：请联系试验统计师。",
    ),
    "randomization.once": ("The subject is randomized already.", "该受试者已随机分组。"),
    "randomization.required": ("The subject is not randomized yet.", "该受试者尚未随机分组。"),
    "rule": ("The trial's rules do not allow this.", "试验规则不允许此操作。"),
    "screening.eligible": (
        "The subject was not eligible at the latest screening.",
        "该受试者在最近一次筛选中不符合入组条件。",
    ),
    "screening.required": ("The subject is not screened yet.", "该受试者尚未筛选。"),
    "sdv.current_version": (
        "Only the form's current record can be verified: open it again.",
        "只能核查表单的当前记录：请重新打开。",
    ),
    "signature.meaning": ("The signature must state its meaning.", "签名须声明其含义。"),
    "signature.reauthentication": ("Sign in again to sign.", "请重新登录后签名。"),
    "signature.signable": ("There is nothing of this kind to sign yet.", "尚无可签署的内容。"),
    "site.active": ("The site is not active in the trial.", "该研究中心未处于启用状态。"),
    "site.known": ("There is no such site in the trial.", "试验中无此研究中心。"),
    "subject.completed": ("The subject has completed the study.", "该受试者已完成研究。"),
    "subject.known": ("There is no such subject at this site.", "该中心无此受试者。"),
    "subject.site_prefix": (
        "The subject id must start with the site's code.",
        "受试者编号须以研究中心代码开头。",
    ),
    "subject.withdrawn": ("The subject is withdrawn from the study.", "该受试者已退出研究。"),
    "visit.after_surgery": ("No surgery is recorded before this visit.", "此随访前尚未记录手术。"),
    "visit.code": ("There is no such visit in the schedule.", "随访计划中无此随访。"),
    "visit.grafts_surviving": (
        "More grafts surviving than were transplanted.",
        "存活移植体数多于移植数。",
    ),
    "visit.once": (
        "This visit is recorded already: correct that record instead.",
        "此随访已记录：如需修改请更正原记录。",
    ),
}

# problem type (after the gateway's base): (English, 简体中文)
TYPES: dict[str, tuple[str, str]] = {
    "validation": ("Some answers are not accepted: see each item.", "部分填写内容未被接受，请查看各项提示。"),
    "unauthorized": ("Sign in again.", "请重新登录。"),
    "forbidden": ("Your role does not do this here.", "您的角色无权执行此操作。"),
    "not-found": ("There is no such page.", "页面不存在。"),
    "stale-form": (
        "The form is out of date or not from this app: open it again.",
        "表单已过期或并非来自本应用：请重新打开。",
    ),
    "no-item-ticked": ("Tick the items you checked against source first.", "请先勾选已核对源数据的项目。"),
    "subject-not-found": ("There is no such subject at this site.", "该中心无此受试者。"),
    "version-not-found": ("There is no such version of the protocol.", "无此方案版本。"),
    "form-not-found": ("The subject has no such form recorded.", "该受试者未记录此表单。"),
    "alert-not-found": ("There is no such alert.", "无此警报。"),
    "not-locked": ("The database is not locked for analysis.", "数据库尚未锁定以供分析。"),
    "request-in-flight": (
        "The same request is still being recorded: wait a moment and open the page again.",
        "相同的请求仍在处理中：请稍候并重新打开页面。",
    ),
    "idempotency-key-reused": (
        "The form was sent twice with different answers: open it again.",
        "表单以不同内容重复提交：请重新打开。",
    ),
    "read-after-beyond-the-record": ("The page is ahead of the record: open it again.", "页面数据有误：请重新打开。"),
    "service-unavailable": (
        "The system is busy: nothing was recorded. Try again in a moment.",
        "系统繁忙，未记录任何内容。请稍后重试。",
    ),
    "not-ready": ("The system is starting: try again in a moment.", "系统正在启动，请稍后重试。"),
    "payload-too-large": ("The file is too large: a photograph is at most 20 MB.", "文件过大：照片不得超过20 MB。"),
    "unsupported-media-type": ("A photograph is a JPEG or PNG file.", "照片须为JPEG或PNG文件。"),
    "not-an-image": ("The file is not a readable JPEG or PNG image.", "该文件不是可读取的JPEG或PNG图像。"),
    "decompression-bomb": (
        "The image has far more pixels than a photograph: it is not taken.",
        "该图像像素数远超正常照片，未予接收。",
    ),
    "no-file": ("Choose the photograph's file.", "请选择照片文件。"),
    "internal": ("Something went wrong: nothing was recorded. Try again.", "系统出错，未记录任何内容。请重试。"),
}
UNKNOWN = ("The form was not accepted.", "表单未被接受。")


def said(problem: dict[str, Any], language: str) -> str:
    """The problem in the person's words: the rule's sentence, else its type's; in English with the gateway's
    specifics after it."""
    rule = str(problem.get("rule") or "")
    kind = str(problem.get("type") or "").rpartition(PROBLEMS)[2]
    words = RULES.get(rule) if kind.startswith("rule/") else None
    en, zh = words or TYPES.get(kind) or UNKNOWN
    if language == "zh":
        return zh
    detail = str(problem.get("detail") or "")
    return f"{en} ({detail})" if detail else en
