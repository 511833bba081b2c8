"""Credit rules (SPEC §4 credit_type/credits): pure functions over plain values, no database."""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from core.findings import (
    E_CREDIT_ON_INCOMPLETE,
    E_CREDIT_TYPE_MISSING,
    E_CREDIT_TYPE_NOT_OFFERED,
    E_CREDIT_TYPE_UNKNOWN,
    E_CREDITS_INCREMENT,
    E_CREDITS_INVALID,
    E_CREDITS_MISSING,
    E_CREDITS_NOT_VARIABLE,
    E_CREDITS_OVER_MAX,
    Finding,
    show,
)

MAX_CREDITS = Decimal("9999.99")
CENT = Decimal("0.01")

ON_INCOMPLETE = (
    "This row has {what} but complete is 0. Do not put credit on a record that is not complete: the imported "
    "credit would stay even if the learner later claims a different amount. Remove the credit, or set complete=1 "
    "with a date_completed."
)
INVALID = "credits must be a number from 0 to 9999.99 with at most two decimals (for example 1.25); got {value}."
TYPE_MISSING = (
    "credits is set but credit_type is empty. Add the credit type's machine name or name (for example {example})."
)
CREDITS_MISSING = "credit_type {value} is set but credits is empty. Add the number of credits earned."
UNKNOWN = "{value} is not a credit type of this site. Use one of (machine name or name): {known}."
NOT_OFFERED = (
    "The course does not offer {value}. It offers: {offered}. Use one of those or add the credit to the course."
)
OVER_MAX = "{value} credits is more than the course's maximum of {max} for {type}. Use at most {max}."
INCREMENT = "{value} is not a multiple of {increment}, the increment of {type} in this course. Round it to a multiple."
NOT_VARIABLE = (
    "{type} in this course is not variable: learners earn exactly {max}, not {value}. Use {max}, or make the "
    "credit variable in the course."
)


@dataclass(frozen=True, slots=True)
class Offer:
    """A credit type a course offers (courses.CourseCredit as plain values)."""

    credit_type_id: int
    machine_name: str
    max_credits: Decimal
    variable: bool
    increment: Decimal
    name: str = ""  # the credit type's human name


def type_label(machine_name: str, name: str = "") -> str:
    """How messages name a credit type: its machine name, then its name ("ama_pra_1 (AMA PRA Category 1 Credit)")."""
    return f"{machine_name} ({name})" if name and name != machine_name else machine_name


def _name_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def credit_type_names(names: Mapping[str, str]) -> dict[str, str]:
    """What a file's credit_type may say, folded, → the machine name it means; from {machine name: name}.

    A credit type may be given by its machine name or by its name, in any case. A machine name wins over
    another type's name that folds to the same text, and a name two types share means neither of them.
    """
    by_name: dict[str, str | None] = {}
    for machine_name, name in names.items():
        key = _name_key(name)
        if key:
            by_name[key] = machine_name if by_name.get(key, machine_name) == machine_name else None
    by_machine_name = {_name_key(machine_name): machine_name for machine_name in names}
    return {key: machine for key, machine in by_name.items() if machine is not None} | by_machine_name


def credit_type_resolve(value: str, *, site_types: Mapping[str, int], names: Mapping[str, str]) -> str:
    """The machine name a row's credit_type means (`names` from credit_type_names); the value itself when it is a
    machine name or means no credit type (credit_check then says so)."""
    if not value or value in site_types:
        return value
    return names.get(_name_key(value), value)


def credits_parse(value: str) -> Decimal | None:
    """A decimal(6,2) ≥ 0, or None when the text is not one."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    if not number.is_finite() or number < 0 or number > MAX_CREDITS or number != number.quantize(CENT):
        return None
    return number


def credit_check(
    *,
    line: int,
    credit_type: str,
    credits: str,
    complete: bool,
    site_types: dict[str, int],
    offers: dict[str, Offer] | None,
    names: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> tuple[Decimal | None, list[Finding]]:
    """Check one row's credit against the site's types and the course's offers (None for a shell: anything goes).

    credit_type is a machine name or a name (`names`, from credit_type_names); `labels` are the site types'
    {machine name: name}, for the messages. Returns the parsed credits and the findings.
    """
    if not credit_type and not credits:
        return None, []
    if not complete:
        what = "credits" if credits else "a credit_type"
        column, value = ("credits", credits) if credits else ("credit_type", credit_type)
        return None, [Finding(E_CREDIT_ON_INCOMPLETE, ON_INCOMPLETE.format(what=what), line, column, value)]

    findings = []
    number = None
    if credits:
        number = credits_parse(credits)
        if number is None:
            findings.append(Finding(E_CREDITS_INVALID, INVALID.format(value=show(credits)), line, "credits", credits))
    if not credit_type:
        example = next(iter(sorted(offers or site_types)), "ama_pra_1")
        findings.append(
            Finding(E_CREDIT_TYPE_MISSING, TYPE_MISSING.format(example=example), line, "credit_type", credit_type)
        )
        return number, findings
    if not credits:
        findings.append(
            Finding(E_CREDITS_MISSING, CREDITS_MISSING.format(value=show(credit_type)), line, "credits", credits)
        )
    machine_name = credit_type_resolve(credit_type, site_types=site_types, names=names or {})
    if machine_name not in site_types:
        labels = labels or {}
        known = ", ".join(type_label(t, labels.get(t, "")) for t in sorted(site_types)) or "(none defined)"
        findings.append(
            Finding(
                E_CREDIT_TYPE_UNKNOWN,
                UNKNOWN.format(value=show(credit_type), known=known),
                line,
                "credit_type",
                credit_type,
            )
        )
        return number, findings
    if offers is None or number is None:
        return number, findings  # a shell takes any site credit type and any decimal(6,2)
    offer = offers.get(machine_name)
    if offer is None:
        offered = ", ".join(type_label(o.machine_name, o.name) for _, o in sorted(offers.items())) or "no credit"
        findings.append(
            Finding(
                E_CREDIT_TYPE_NOT_OFFERED,
                NOT_OFFERED.format(value=show(credit_type), offered=offered),
                line,
                "credit_type",
                credit_type,
            )
        )
        return number, findings
    findings.extend(offer_check(line=line, credits=number, raw=credits, offer=offer))
    return number, findings


def offer_check(*, line: int, credits: Decimal, raw: str, offer: Offer) -> list[Finding]:
    """Credits against a course's offer: at most the max, a multiple of the increment, below max only if variable."""
    names = {"value": raw, "max": offer.max_credits, "type": offer.machine_name, "increment": offer.increment}
    if credits > offer.max_credits:
        return [Finding(E_CREDITS_OVER_MAX, OVER_MAX.format(**names), line, "credits", raw)]
    if credits < offer.max_credits and not offer.variable:
        return [Finding(E_CREDITS_NOT_VARIABLE, NOT_VARIABLE.format(**names), line, "credits", raw)]
    if offer.increment and credits % offer.increment != 0 and credits != offer.max_credits:
        return [Finding(E_CREDITS_INCREMENT, INCREMENT.format(**names), line, "credits", raw)]
    return []
