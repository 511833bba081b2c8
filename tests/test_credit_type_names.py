"""A credit type given by its name (issue 14): "AMA PRA Category 1 Credit" as well as ama_pra_1.

The rule is credits.rules (credit_type_names, credit_type_resolve, used by credit_check): the machine name,
or the name in any case; a machine name wins over another type's name that reads the same. The differential
tests (tests/differential.py) run names through the fast and the reference rules on both databases.
"""

import json
from decimal import Decimal

import pytest

from credits.models import CreditAward, CreditType
from credits.rules import Offer, credit_check, credit_type_names, credit_type_resolve
from enrollments.models import Enrollment

from .conftest import run_cli

LABELS = {"ama_pra_1": "AMA PRA Category 1 Credit", "ancc": "ANCC Contact Hours", "abim_moc": "ABIM MOC Points"}
SITE = {"ama_pra_1": 1, "ancc": 2, "abim_moc": 3}
NAMES = credit_type_names(LABELS)
OFFERS = {
    "ama_pra_1": Offer(1, "ama_pra_1", Decimal("2.00"), True, Decimal("0.25"), "AMA PRA Category 1 Credit"),
    "ancc": Offer(2, "ancc", Decimal("2.00"), False, Decimal("0.25"), "ANCC Contact Hours"),
}


def resolve(value, names=NAMES, site=SITE):
    return credit_type_resolve(value, site_types=site, names=names)


def check(credit_type, credits="1.50", offers=OFFERS):
    return credit_check(
        line=4,
        credit_type=credit_type,
        credits=credits,
        complete=True,
        site_types=SITE,
        offers=offers,
        names=NAMES,
        labels=LABELS,
    )


@pytest.mark.parametrize(
    "value,machine_name",
    [
        ("ama_pra_1", "ama_pra_1"),
        ("AMA PRA Category 1 Credit", "ama_pra_1"),
        ("ama pra category 1 credit", "ama_pra_1"),
        ("AMA  PRA Category 1 Credit", "ama_pra_1"),  # spaces inside count once
        ("ANCC", "ancc"),  # a machine name in another case
        ("ANCC contact hours", "ancc"),
        ("AMA PRA Category 1", "AMA PRA Category 1"),  # not a name: exact, not "close"
        ("cme", "cme"),
    ],
)
def test_a_credit_type_is_its_machine_name_or_its_name_in_any_case(value, machine_name):
    assert resolve(value) == machine_name


def test_the_machine_name_wins_over_another_type_s_name():
    labels = {"ancc": "ANCC Contact Hours", "ancc_legacy": "ANCC"}
    site = {"ancc": 1, "ancc_legacy": 2}
    assert resolve("ancc", credit_type_names(labels), site) == "ancc"
    assert resolve("ANCC", credit_type_names(labels), site) == "ancc"


def test_a_name_two_types_share_names_neither():
    labels = {"moc_a": "MOC Points", "moc_b": "moc points"}
    assert resolve("MOC Points", credit_type_names(labels), {"moc_a": 1, "moc_b": 2}) == "MOC Points"


def test_a_name_passes_the_same_checks_as_its_machine_name():
    assert check("AMA PRA Category 1 Credit") == check("ama_pra_1") == (Decimal("1.50"), [])
    _, (finding,) = check("ANCC Contact Hours", credits="1.50")
    assert finding.code == "E_CREDITS_NOT_VARIABLE" and finding.value == "1.50"


def test_a_type_the_course_does_not_offer_is_answered_with_the_names_it_offers():
    _, (finding,) = check("ABIM MOC Points")
    assert (finding.code, finding.column, finding.value) == (
        "E_CREDIT_TYPE_NOT_OFFERED",
        "credit_type",
        "ABIM MOC Points",
    )
    assert "It offers: ama_pra_1 (AMA PRA Category 1 Credit), ancc (ANCC Contact Hours)." in finding.message


def test_an_unknown_type_is_answered_with_every_type_and_its_name():
    _, (finding,) = check("CME")
    assert finding.code == "E_CREDIT_TYPE_UNKNOWN" and finding.value == "CME"
    assert (
        "Use one of (machine name or name): abim_moc (ABIM MOC Points), ama_pra_1 (AMA PRA Category 1 Credit), "
        "ancc (ANCC Contact Hours)." in finding.message
    )


# -- through the importer -----------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rules", ["fast", "reference"])
def test_an_import_takes_credit_types_by_name_and_stores_the_type(course, learner, write_csv, settings, rules):
    settings.IMPORT_REFERENCE_RULES = rules == "reference"
    path = write_csv(
        [
            ["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "AMA PRA Category 1 Credit", "1.50"],
            ["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "anCC contact hours", "2.00"],
        ]
    )

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json")

    result = json.loads(out)
    assert code == 0, result["errors"]
    enrollment = Enrollment.objects.get(user=learner, course=course)
    assert sorted(
        CreditAward.objects.filter(enrollment=enrollment).values_list("credit_type__machine_name", "credits")
    ) == [
        ("ama_pra_1", Decimal("1.50")),
        ("ancc", Decimal("2.00")),
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rules", ["fast", "reference"])
def test_a_type_given_once_by_name_and_once_by_machine_name_is_a_duplicate(course, learner, write_csv, settings, rules):
    settings.IMPORT_REFERENCE_RULES = rules == "reference"
    CreditType.objects.filter(machine_name="acpe").update(name="ACPE Contact Hours")
    path = write_csv(
        [
            ["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"],
            ["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "AMA PRA Category 1 Credit", "1.50"],
            ["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ACPE Contact Hours", "1.00"],
        ]
    )

    code, out, _ = run_cli(path, "--course", "CARD101", "--format", "json", "--dry-run")

    errors = json.loads(out)["errors"]
    assert code == 1
    assert [(e["line"], e["code"], e["value"]) for e in errors] == [
        (3, "E_DUPLICATE_CREDIT_TYPE", "ama_pra_1"),
        (4, "E_CREDIT_TYPE_NOT_OFFERED", "ACPE Contact Hours"),
    ]
    assert (
        "abim_moc (ABIM MOC Points), ama_pra_1 (AMA PRA Category 1 Credit), ancc (ANCC Contact Hours)"
        in (errors[1]["message"])
    )
