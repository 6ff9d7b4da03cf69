"""Every refusal a person can meet has words in both languages: each trial rule by its code, each of the gateway's
own problem types by its type."""

import re
from pathlib import Path

from services.web.problems import RULES, TYPES, said
from tests.unit.shared.test_rules import every_rule

GATEWAY = Path(__file__).resolve().parents[3] / "services" / "gateway"


def test_every_rule_any_service_enforces_has_words_in_both_languages() -> None:
    codes = {cls.rule for cls in every_rule()}
    assert codes - set(RULES) == set(), "rules without words"
    assert set(RULES) - codes == set(), "words for rules nobody enforces"
    assert all(en and zh and en != zh for en, zh in RULES.values())


def test_every_problem_type_the_gateway_answers_with_has_words_in_both_languages() -> None:
    source = "\n".join(path.read_text() for path in GATEWAY.rglob("*.py"))
    types = set(re.findall(r'ProblemError\(\s*\d+,\s*"([a-z-]+)"', source))
    types |= set(re.findall(r'PROBLEM_BASE \+ "([a-z-]+)"', source))
    types |= set(re.findall(r'\d{3}: "([a-z-]+)"', source))  # an HTTP error's type by its status
    assert len(types) > 10
    assert types - {"method-not-allowed"} - set(TYPES) == set(), "a page never shows these: no form goes there"


def test_a_refusal_is_said_by_its_rule_in_chinese_and_with_the_specifics_in_english() -> None:
    problem = {"type": "/problems/rule/visit.once", "rule": "visit.once", "detail": "M1 is recorded already"}
    assert said(problem, "zh") == "此随访已记录：如需修改请更正原记录。"
    assert said(problem, "en") == (
        "This visit is recorded already: correct that record instead. (M1 is recorded already)"
    )
    assert said({"type": "/problems/forbidden", "detail": "role monitor"}, "zh") == "您的角色无权执行此操作。"
    assert said({"status": 500}, "zh") == "表单未被接受。"
