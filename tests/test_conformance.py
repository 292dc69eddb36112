"""The conformance table in the docs is current, and every rule has at least one test."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module():  # type: ignore[no-untyped-def]
    path = ROOT / "scripts" / "conformance.py"
    spec = importlib.util.spec_from_file_location("conformance", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_name_pattern_tells_nested_rule_ids_apart() -> None:
    conformance = _module()
    tor_7_2 = conformance._name_pattern("TOR-7.2")
    assert tor_7_2.search("test_tor_7_2_values_unrounded")
    assert not tor_7_2.search("test_tor_7_2_1_meter_exchange")
    assert conformance._name_pattern("TOR-7.2.1").search("test_tor_7_2_1_meter_exchange")
    assert not conformance._name_pattern("TOR-4.1").search("test_tor_4_1v_parent")
    assert conformance._doc_pattern("TOR-4.1").search("checks TOR-4.1 padding")
    assert not conformance._doc_pattern("TOR-4.1").search("checks TOR-4.1v parents")


def test_every_rule_has_a_test() -> None:
    found = _module().collect(ROOT)
    untested = [rule for rule, tests in found.items() if not tests]
    assert untested == []


def test_conformance_doc_is_current() -> None:
    conformance = _module()
    expected = conformance.render(conformance.collect(ROOT))
    actual = (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/conformance.md is stale: run python scripts/conformance.py"
