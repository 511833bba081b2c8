"""The LMS completion engine, as pure rules (SPEC §2).

An enrollment in a course (kind ``course``) with no required course object is complete the
moment it exists and receives the course's maximum credit of every credit type it offers,
whatever credit was asked for. Shells are records only: the engine never touches them. The
importer uses these rules to predict what will happen (W_AUTO_COMPLETE) and to apply it in bulk;
``enrollments.services`` applies them to single enrollments.
"""

from datetime import date
from decimal import Decimal


def completes_on_enrollment(*, kind: str, has_required_object: bool) -> bool:
    return kind == "course" and not has_required_object


def engine_awards(
    maximums: dict[int, Decimal], requested: dict[int, tuple[Decimal | None, date | None]]
) -> dict[int, tuple[Decimal, date | None]]:
    """Credit type id -> (credits, expiration) the engine gives a new enrollment.

    The maximum of every type the course offers (`maximums`), whatever was requested; only the
    expiration a request gave for an offered type is kept.
    """
    return {type_id: (maximum, requested.get(type_id, (None, None))[1]) for type_id, maximum in maximums.items()}
