"""The PARS page at real scale: 100k learners in one activity. The page holds grouped counts and one page of
the missing-data list, in a bounded number of queries and bytes; the CSVs carry every row."""

import re

import pytest
from django.contrib.auth import get_user_model

from enrollments.pars import MISSING_PER_PAGE, pars_report, pars_summary

from .bulk import big_activity, expected_counts
from .test_pars import admin_client, page_text, pars_rows, pars_site  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()
LEARNERS = 100_000


def test_the_summary_agrees_with_the_report_it_stands_for(pars_site):  # noqa: F811
    for kwargs in [{}, {"activity": "0012345"}, {"date_from": "2026-09-06"}, {"date_to": "2026-09-30"}]:
        if "date_from" in kwargs or "date_to" in kwargs:
            from datetime import date

            kwargs = {k: date.fromisoformat(v) for k, v in kwargs.items()}
        report, summary = pars_report(**kwargs), pars_summary(**kwargs)
        assert summary.activities == report.activities, kwargs
        assert (summary.left_out, summary.not_counted, summary.other_completions) == (
            report.left_out,
            report.not_counted,
            report.other_completions,
        )
        assert summary.in_file == len(report.completions) and summary.missing_count == len(report.missing)


def test_a_100k_learner_activity_page_is_small_quick_and_right(
    course,
    credit_types,
    admin_client,  # noqa: F811
    django_assert_max_num_queries,
):
    big_activity(course=course, credit_type=credit_types["ama_pra_1"], n=LEARNERS)
    want = expected_counts(LEARNERS)

    with django_assert_max_num_queries(12):
        page = admin_client.get("/reports/pars/", {"activity": "0012345"})

    assert page.status_code == 200
    assert len(page.content) < 100_000  # was 5.9 MB: one page of the list, not every learner
    text = page_text(page)
    card = page.context["report"].activities[0]
    assert (card.physicians, card.others, card.in_file, card.missing_data) == (
        want["physicians"],
        want["others"],
        want["in_file"],
        want["missing"],
    )
    assert f"{want['missing']} completions are not in the file" in text
    assert f"{want['name']} completions missing first and last name" in text
    assert f"{want['dob']} completions missing date of birth (MM/DD)" in text
    assert f"{want['license']} completions missing licensing state and license ID or NPI" in text
    missing_table = page.content.decode().split('<table class="pars-missing">')[1].split("</table>")[0]
    assert len(re.findall(r"<tr>", missing_table)) == MISSING_PER_PAGE + 1  # its header row and one page
    assert f"Page 1 of {-(-want['missing'] // MISSING_PER_PAGE)}" in text

    # One reason, a later page: still one page of rows, each really missing that
    with django_assert_max_num_queries(12):
        page = admin_client.get("/reports/pars/", {"activity": "0012345", "reason": "dob", "page": "3"})
    items = page.context["missing_page"].items
    assert len(items) == MISSING_PER_PAGE
    assert all("date of birth (MM/DD)" in item.missing for item in items)
    assert f"Missing date of birth (MM/DD): {2 * MISSING_PER_PAGE + 1}–{3 * MISSING_PER_PAGE} of {want['dob']}" in (
        page_text(page)
    )

    # The download has every one of them, formula-safe like every CSV the product writes
    rows = pars_rows(admin_client.get("/reports/pars/missing.csv", {"activity": "0012345"}).content.decode())
    assert len(rows) == want["missing"]
    assert sum("date of birth (MM/DD)" in r["Missing"] for r in rows) == want["dob"]
