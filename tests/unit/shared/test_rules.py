"""Every rule has one code and one class, wherever it is enforced: a client sees one problem type per rule."""

import collections
import importlib
import pkgutil

import services
from shared.contracts.rules import RuleViolation

# Every module that defines rule errors.
# Every module of every service (a rule may be defined wherever its service decides), but the entry points.
DOMAINS = sorted(
    module.name
    for module in pkgutil.walk_packages(services.__path__, "services.")
    if not module.name.endswith("__main__")
)


def every_rule() -> list[type[RuleViolation]]:
    for module in DOMAINS:
        importlib.import_module(module)
    found, todo = [], list(RuleViolation.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_each_rule_code_is_defined_by_exactly_one_class() -> None:
    classes = collections.defaultdict(list)
    for cls in every_rule():
        classes[cls.rule].append(f"{cls.__module__}.{cls.__qualname__}")
    assert len(classes) > 30
    assert {code: names for code, names in classes.items() if len(names) > 1} == {}


def test_rules_enforced_by_several_services_live_in_the_contracts() -> None:
    shared = {cls.rule for cls in every_rule() if cls.__module__ == "shared.contracts.rules"}
    assert {"consent.withdrawn", "randomization.once", "randomization.required", "IN09", "subject.withdrawn"} <= shared
