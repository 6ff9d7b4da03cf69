"""Every report and export by its path under `/v1/reports/` and its title in both languages, and the words of
the reports' columns: the gateway's report page and the web app list and label the same ones."""

from collections.abc import Sequence

from services.reporting.reports import adam
from shared.contracts.dictionary import Translated


def _(en: str, zh: str) -> Translated:
    return Translated(en=en, zh=zh)


PICTURES: tuple[tuple[str, Translated], ...] = (
    ("consort.svg", _("CONSORT flow diagram", "CONSORT流程图")),
    ("enrollment.svg", _("Enrollment over time by site and arm", "各中心及各组入组随时间变化")),
    ("endpoints.svg", _("Every assessment by visit and arm (mean, 95% CI)", "各随访各组全部评估（均值，95%置信区间）")),
)
REPORTS: tuple[tuple[str, Translated], ...] = (
    PICTURES[0],
    ("consort.json", _("CONSORT flow (JSON)", "CONSORT流程（JSON）")),
    PICTURES[1],
    ("enrollment.json", _("Enrollment over time (JSON)", "入组随时间变化（JSON）")),
    ("visit-compliance.json", _("Visit compliance by visit and site", "各随访及各中心随访依从性")),
    (
        "adverse-events.json",
        _(
            "Adverse events by arm, grade, seriousness and relatedness; open SAE alerts",
            "按组别、分级、严重性及相关性统计的不良事件；未确认的严重不良事件警报",
        ),
    ),
    (
        "deviations.json",
        _(
            "Protocol deviations by site and kind, each with subject, date and rule code",
            "按中心及类型统计的方案偏离，含受试者、日期及规则代码",
        ),
    ),
    (
        "audit-trail.json",
        _(
            "Audit trail (filter by subject, since, until); corrections old → new",
            "稽查轨迹（可按受试者及时间筛选）；更正前 → 更正后",
        ),
    ),
    (
        "queries.json",
        _("Open queries by site, form and age, each with its thread", "按中心、表单及时长统计的未关闭质疑及其往来记录"),
    ),
    (
        "sdv.json",
        _(
            "Source data verification by site and subject (% of forms verified)",
            "按中心及受试者统计的源数据核查（已核查表单百分比）",
        ),
    ),
    (
        "sdv-worklist.json",
        _("Monitors' work list: forms not yet verified, oldest first", "监查工作清单：尚未核查的表单（最早在前）"),
    ),
    (
        "signatures.json",
        _(
            "Investigators' signatures by site and kind: standing, or invalidated by a change",
            "按中心及类型统计的研究者签名：有效或因更改而失效",
        ),
    ),
    ("primary-endpoint.json", _("Primary endpoint by arm (JSON)", "各组主要终点（JSON）")),
    ("endpoints.json", _("Every assessment by visit and arm (JSON)", "各随访各组全部评估（JSON）")),
)


def exports(names: Sequence[str]) -> tuple[tuple[str, Translated], ...]:
    """Every export: each dataset by its name (`datasets.names`: the collected forms' findings domains among them),
    then the whole-trial files."""
    return (
        *(
            (f"exports/{d}.csv", _(f"{kind} {d}", f"{kind} {d}"))
            for d in names
            for kind in ("ADaM" if d in adam.DATASETS else "SDTM",)
        ),
        ("exports/define.json", _("Define: every exported column described", "Define：全部导出列的说明")),
        ("exports/odm.xml", _("CDISC ODM 1.3.2 snapshot of the clinical data", "临床数据的CDISC ODM 1.3.2快照")),
        (
            "exports/database-lock.json",
            _("The database lock the exports are made as of (once locked)", "导出数据所依据的数据库锁定（锁定后）"),
        ),
    )


# The reports' columns and parts (their JSON names), as a page heads them.
COLUMNS: dict[str, Translated] = {
    name: _(en, zh)
    for name, (en, zh) in {
        "actor": ("Who", "操作人"),
        "actor_role": ("Role", "角色"),
        "actor_site": ("Their site", "所属中心"),
        "adverse_events": ("Adverse events", "不良事件"),
        "age": ("Days open", "已开放天数"),
        "age_days": ("Age (days)", "时长（天）"),
        "age_hours": ("Age (hours)", "时长（小时）"),
        "alert_id": ("Alert", "警报"),
        "allocated": ("Allocated", "已分配"),
        "analysed": ("Analysed", "纳入分析"),
        "analyses": ("Analyses", "分析"),
        "analysis_set": ("Analysis set", "分析集"),
        "arm": ("Arm", "组别"),
        "arms": ("Arms", "各组"),
        "assessed_for_eligibility": ("Assessed for eligibility", "评估入组资格"),
        "at": ("When", "时间"),
        "by_site_and_kind": ("By site and kind", "按中心及类型"),
        "causation_id": ("Caused by", "起因"),
        "changed_since_verification": ("Changed since verified", "核查后已更改"),
        "changes": ("Changes", "更改"),
        "check": ("Edit check", "核查规则"),
        "ci_high": ("CI upper", "置信区间上限"),
        "ci_low": ("CI lower", "置信区间下限"),
        "code": ("Code", "代码"),
        "confidence": ("Confidence", "置信水平"),
        "correlation_id": ("Request", "请求"),
        "counts": ("Counts", "计数"),
        "cumulative": ("Cumulative", "累计"),
        "data": ("Data", "数据"),
        "day": ("Day", "日期"),
        "declined_to_participate": ("Declined to participate", "拒绝参加"),
        "description": ("Description", "说明"),
        "deviation_id": ("Deviation", "偏离"),
        "deviations": ("Deviations", "方案偏离"),
        "did_not_receive": ("Did not receive the allocated intervention", "未接受分配的干预"),
        "died": ("Died", "死亡"),
        "difference": ("Difference", "组间差异"),
        "discontinued": ("Discontinued", "中止干预"),
        "endpoint": ("Endpoint", "终点"),
        "escalations": ("Escalations", "升级次数"),
        "estimate": ("Estimate", "估计值"),
        "event_id": ("Event", "事件"),
        "event_type": ("What happened", "事件类型"),
        "events": ("Events", "事件"),
        "excluded": ("Excluded", "排除"),
        "excluded_by_criterion": ("Excluded by criterion", "按标准排除"),
        "excluded_from_analysis": ("Excluded from analysis", "排除出分析"),
        "failed_criteria": ("Criteria not met", "未符合的标准"),
        "field": ("Item", "项目"),
        "form": ("Form", "表单"),
        "form_kind": ("Form", "表单"),
        "form_version": ("Form version", "表单版本"),
        "forms": ("Forms", "表单数"),
        "grade": ("Grade", "分级"),
        "hodges_lehmann": ("Hodges-Lehmann shift", "Hodges-Lehmann位移"),
        "assessed_blind": ("Counted by the blinded assessor", "盲态评估者计数"),
        "assessed_by_site": ("Recorded by the site", "研究中心记录"),
        "values_from": ("Whose values", "数值来源"),
        "in_window": ("In window", "时间窗内"),
        "interval": ("Interval from", "区间依据"),
        "invalidated_by_change": ("Invalidated by a change", "因更改而失效"),
        "kind": ("Kind", "类型"),
        "late": ("Late", "逾期"),
        "lost_to_follow_up": ("Lost to follow-up", "失访"),
        "mean": ("Mean", "均值"),
        "median": ("Median", "中位数"),
        "messages": ("Thread", "往来记录"),
        "method": ("Method", "方法"),
        "missed": ("Missed", "失访"),
        "n": ("n", "例数"),
        "not_expected": ("Not expected", "无需随访"),
        "not_meeting_criteria": ("Not meeting the criteria", "不符合入组标准"),
        "not_verified": ("Not verified", "未核查"),
        "occurred_on": ("Occurred on", "发生日期"),
        "open": ("Open", "未关闭"),
        "open_alerts": ("Open SAE alerts", "未确认的严重不良事件警报"),
        "opened_at": ("Opened", "提出时间"),
        "opened_by": ("Opened by", "提出人"),
        "other_reasons": ("Other reasons", "其他原因"),
        "out_of_window": ("Out of window", "时间窗外"),
        "paramcd": ("Assessment", "评估指标"),
        "primary_visit": ("Primary-endpoint visit", "主要终点随访"),
        "primary_visit_not_done": ("Primary-endpoint visit not done", "未完成主要终点随访"),
        "primary_visit_out_of_window": ("Primary-endpoint visit out of window", "主要终点随访超出时间窗"),
        "protocol_version": ("Protocol version", "方案版本"),
        "q1": ("Q1", "下四分位数"),
        "q3": ("Q3", "上四分位数"),
        "query_id": ("Query", "质疑"),
        "raised_at": ("Raised", "发出时间"),
        "randomization_invalidated": ("Randomization invalidated", "随机分组作废"),
        "randomized": ("Randomized", "已随机"),
        "reason": ("Reason", "原因"),
        "received_allocated_intervention": ("Received the allocated intervention", "接受分配的干预"),
        "recorded_at": ("Recorded", "记录时间"),
        "recorded_on": ("Recorded on", "记录日期"),
        "refused_consent": ("Refused consent", "拒绝知情同意"),
        "related": ("Related", "相关"),
        "reporting_deadline": ("Report due by", "报告截止"),
        "scheduled": ("Scheduled", "待随访"),
        "sd": ("SD", "标准差"),
        "sdv": ("Verification", "源数据核查"),
        "sequence": ("Position in the record", "记录序号"),
        "serious": ("Serious", "严重"),
        "set_code": ("Analysis set code", "分析集代码"),
        "site": ("Site", "中心"),
        "sites": ("Sites", "各中心"),
        "state": ("State", "状态"),
        "step": ("Step", "步骤"),
        "subject_id": ("Subject", "受试者"),
        "subjects": ("Subjects", "受试者"),
        "term": ("Term", "术语"),
        "text": ("Text", "内容"),
        "valid": ("Standing", "有效"),
        "verified": ("Verified", "已核查"),
        "verified_pct": ("Verified (%)", "已核查（%）"),
        "version": ("Record", "记录版本"),
        "visit": ("Visit", "随访"),
        "welch": ("Welch t", "Welch t检验"),
    }.items()
}
