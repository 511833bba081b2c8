"""The cross-row state: the reference forms (rows.py) and the compact ones (fast.py) answer alike, exactly.

The compact forms are also run with a hash that sends every identifier to one key, so that every look-up
collides: no false finding, and no two learners merged, can come from a hash.
"""

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lms_import.importer.fast import PackedEnrollments, PackedLearners, PackedProfiles, PackedTable
from lms_import.importer.rows import Enrollments, Learners, Profiles, profile_merge
from lms_import.importer.schema import NAMES, Row

BLANK = ("", "", "", "", "", "")


def row(ext="", email="", profile=BLANK, line=2):
    values = dict.fromkeys(NAMES, "")
    values.update(external_user_id=ext, external_email=email)
    return Row(line, *values.values(), profile)


def colliding(kind: int, text: str) -> int:
    return 7  # every identifier has the same hash


LEARNER_FORMS = [
    pytest.param(Learners, id="reference"),
    pytest.param(PackedLearners, id="packed"),
    pytest.param(lambda n=0: PackedLearners(n, key=colliding), id="packed-colliding"),
]
ENROLLMENT_FORMS = [
    pytest.param(Enrollments, id="reference"),
    pytest.param(lambda n=0: PackedEnrollments(n, {"ama_pra_1": 1, "ancc": 2}), id="packed"),
]


@pytest.mark.parametrize("make", LEARNER_FORMS)
def test_learners_match_by_either_identifier_and_flag_conflicts(make):
    learners = make()
    first = ("04", "", "CA", "", "", "")
    assert learners.find_or_add(row("N-1", "n@example.org", first)) == (0, True, False, first)
    assert learners.find_or_add(row("N-1", "n@example.org")) == (0, False, False, first)
    assert learners.find_or_add(row("N-2", "")) == (1, True, False, BLANK)
    assert learners.find_or_add(row("", "m@example.org")) == (2, True, False, BLANK)
    # back to the first learner, by either identifier, after others: its first row's profile comes back
    assert learners.find_or_add(row("N-1", "n@example.org")) == (0, False, False, first)
    # same e-mail, another external id: the file disagrees with itself about who this is
    assert learners.find_or_add(row("N-3", "n@example.org"))[2] is True
    # the same external id without its e-mail is a conflict too
    assert learners.find_or_add(row("N-1", ""))[2] is True
    assert learners.knows(row("N-2", "")) and learners.knows(row("", "m@example.org"))
    assert not learners.knows(row("N-9", "")) and not learners.knows(row("", "x@example.org"))
    assert learners.count == 3


@pytest.mark.parametrize("make", LEARNER_FORMS)
def test_two_learners_whose_identifiers_are_each_others_are_two_learners(make):
    learners = make()
    # an external id that looks like another learner's e-mail names another learner
    assert learners.find_or_add(row("", "x@example.org"))[:3] == (0, True, False)
    assert learners.find_or_add(row("x@example.org", ""))[:3] == (1, True, False)
    assert learners.find_or_add(row("", "x@example.org"))[:3] == (0, False, False)
    assert learners.find_or_add(row("x@example.org", ""))[:3] == (1, False, False)


@pytest.mark.parametrize("make", LEARNER_FORMS)
def test_usernames_of_earlier_learners(make):
    learners = make()
    learners.find_or_add(row("A-1", "x@example.org"))  # username x@example.org
    learners.find_or_add(row("y@example.org", ""))  # username y@example.org (its id: it has no e-mail)
    learners.find_or_add(row("z@example.org", "q@example.org"))  # username q@example.org, not its id
    assert learners.username_earlier("x@example.org", 1) and not learners.username_earlier("x@example.org", 0)
    assert learners.username_earlier("y@example.org", 2) and not learners.username_earlier("y@example.org", 1)
    assert not learners.username_earlier("z@example.org", 3)
    assert learners.username_earlier("q@example.org", 3) and not learners.username_earlier("A-1", 3)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_packed_learners_answer_as_the_reference_on_random_files(seed):
    rng = random.Random(seed)
    people = [
        (f"L-{n}" if rng.random() < 0.7 else "", f"p{n}@example.org" if rng.random() < 0.7 else "") for n in range(300)
    ]
    people = [p for p in people if any(p)]
    forms = [Learners(), PackedLearners(), PackedLearners(key=colliding)]
    for _ in range(2000):
        ext, email = rng.choice(people)
        if rng.random() < 0.05:  # a row that mixes two learners' identifiers
            email = rng.choice(people)[1]
        profile = ("0" + str(rng.randrange(1, 3)), "", "", "", "", "") if rng.random() < 0.1 else BLANK
        r = row(ext, email, profile)
        answers = [form.find_or_add(r) for form in forms]
        assert answers[1:] == answers[:1] * 2, (r.external_user_id, r.external_email)
        username = rng.choice(people)[1] or rng.choice(people)[0]
        order = rng.randrange(forms[0].count + 1)
        assert len({form.username_earlier(username, order) for form in forms}) == 1


def test_a_colliding_hash_never_merges_learners():
    learners = PackedLearners(key=colliding)
    for n in range(200):
        assert learners.find_or_add(row(f"L-{n}", f"l{n}@example.org"))[:3] == (n, True, False)
    assert [learners.find_or_add(row(f"L-{n}", f"l{n}@example.org"))[:3] for n in (150, 3, 199)] == [
        (150, False, False),
        (3, False, False),
        (199, False, False),
    ]


def fields(start="2026-01-05", complete=True, completed="2026-01-20", attended=None, category=""):
    def moment(text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    return (moment(start), None, complete, moment(completed) if completed else None, attended, category)


@pytest.mark.parametrize("make", ENROLLMENT_FORMS)
def test_enrollments_find_duplicates_and_inconsistent_rows(make):
    enrollments = make()
    assert enrollments.add_row(5, 2, 2, fields(), "ama_pra_1") == (0, True, 2, None)
    assert enrollments.add_row(5, 2, 3, fields(), "ancc") == (0, False, 2, None)
    assert enrollments.add_row(5, 2, 4, fields(), "ama_pra_1") == (0, False, 2, "duplicate")
    assert enrollments.add_row(5, 2, 5, fields(category="physician"), "") == (0, False, 2, "inconsistent")
    assert enrollments.add_row(7, 2, 6, fields(), "") == (1, True, 6, None)
    assert enrollments.add_row(7, 2, 7, fields(), "") == (1, False, 6, "duplicate")
    # back to the first enrollment after another: its fields are compared as kept, exactly
    assert enrollments.add_row(5, 2, 8, fields(attended=True), "") == (0, False, 2, "inconsistent")
    assert enrollments.add_row(5, 2, 9, fields(completed="2026-01-21"), "") == (0, False, 2, "inconsistent")
    assert enrollments.add_row(5, 2, 10, fields(), "") == (0, False, 2, None)
    assert enrollments.add_row(5, 4, 11, fields(), "") == (2, True, 11, None)


@pytest.mark.parametrize("make", ENROLLMENT_FORMS)
def test_the_same_moment_in_another_zone_is_the_same_field(make):
    enrollments = make()
    utc = datetime(2026, 1, 5, 12, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    first = (utc, None, False, None, None, "")
    other = (paris, None, False, None, None, "")
    assert enrollments.add_row(3, 2, 2, first, "") == (0, True, 2, None)
    assert enrollments.add_row(9, 2, 3, first, "") == (1, True, 3, None)
    assert enrollments.add_row(3, 2, 4, other, "ancc") == (0, False, 2, None)
    later = (utc + timedelta(microseconds=1), None, False, None, None, "")
    assert enrollments.add_row(3, 2, 5, later, "ama_pra_1") == (0, False, 2, "inconsistent")


def test_packed_table_grows_and_finds_every_key_including_repeated_ones():
    table = PackedTable(capacity=4)
    keys = [(n * 7919) % 4096 + 1 for n in range(5000)]  # repeats: several values per key
    for n, key in enumerate(keys):
        table.insert(key, n)
    assert len(table) == 5000
    for key in set(keys[:50]):
        assert sorted(table.values[slot] for slot in table.slots(key)) == [n for n, k in enumerate(keys) if k == key]
    assert table.find(10_000) == -1


@pytest.mark.parametrize("make", [Profiles, PackedProfiles], ids=["reference", "packed"])
def test_profiles_keep_each_learner_s_latest_change(make):
    profiles = make()
    assert profiles.get(4) is None
    profiles.set(4, ("04", "", "", "", "", ""))
    profiles.set(9, BLANK)
    assert profiles.get(4) == ("04", "", "", "", "", "") and profiles.get(9) == BLANK
    profiles.set(4, ("04", "09", "CA", "", "", "B-1"))
    assert profiles.get(9) == BLANK and profiles.get(4) == ("04", "09", "CA", "", "", "B-1")
    assert profiles.get(5) is None


def test_a_merged_profile_keeps_its_values_and_takes_the_row_s_in_its_blanks():
    assert profile_merge(("04", "", "CA"), ("05", "09", "")) == ("04", "09", "CA")


@pytest.mark.parametrize("make", ENROLLMENT_FORMS)
def test_keys_of_any_size_are_kept_apart(make):
    enrollments = make()
    huge = 1 << 45  # a learner key past the packed key space
    assert enrollments.add_row(huge, 1, 2, fields(), "ama_pra_1")[:2] == (0, True)
    assert enrollments.add_row(huge + 2, 1, 3, fields(), "ama_pra_1")[:2] == (1, True)
    assert enrollments.add_row(5, 1 << 30, 4, fields(), "")[:2] == (2, True)
    assert enrollments.add_row(huge, 1, 5, fields(), "ama_pra_1") == (0, False, 2, "duplicate")
    assert enrollments.add_row(5, 1 << 30, 6, fields(), "ancc") == (2, False, 4, None)
