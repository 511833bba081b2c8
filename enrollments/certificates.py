"""Certificates (SPEC §10): who has one, and the PDF that names learner, course, date and credits.

``certificate_refusal`` is the pure rule; ``certificate_for`` gathers the plain values of one
enrollment and ``certificate_pdf`` draws them with reportlab (a TrueType font is embedded, so every
name prints and the PDF's text can be read back).
"""

import io
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path

from django.db.models import Q
from django.utils import timezone

from core.records import Source

REFUSED_SHELL = (
    "Imported course shells do not have certificates: a shell holds a record imported with the global (legacy) "
    "importer, not a course the learner took here."
)
HOW_TO_GET_ONE = (
    "To get a certificate, a site admin creates the course (kind 'course', with certificates enabled) and imports "
    "the enrollment into it with the course-level importer (Import → Course record import → Importer: "
    "course-level, choosing that course)."
)
REFUSED_LEGACY = (
    "This record was imported with the global (legacy) importer; legacy records never have certificates. "
    + HOW_TO_GET_ONE
)
REFUSED_DISABLED = "This course does not issue certificates."
REFUSED_INCOMPLETE = "The certificate is available once the course is complete."

FONT_CANDIDATES = [
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),  # wide coverage where the system has it
]


def certificate_refusal(*, course_kind: str, certificate_enabled: bool, complete: bool, source: str) -> str | None:
    """Why this enrollment has no certificate, or None when it has one."""
    if course_kind != "course":
        return REFUSED_SHELL
    if source == Source.LEGACY_IMPORT:
        return REFUSED_LEGACY
    if not certificate_enabled:
        return REFUSED_DISABLED
    if not complete:
        return REFUSED_INCOMPLETE
    return None


def certified() -> Q:
    """certificate_refusal(...) is None, as a filter on enrollments: the site admin's list of every certificate.
    tests/test_certificates.py holds the two against each other for every combination of the rule's inputs."""
    return Q(course__kind="course", course__certificate_enabled=True, complete=True) & ~Q(source=Source.LEGACY_IMPORT)


@dataclass(frozen=True)
class Certificate:
    enrollment_id: int
    learner: str
    course_title: str
    course_id: str
    completed: datetime | None
    credits: list[tuple[str, Decimal, str]]  # (credit type name, credits, unit)

    def completed_text(self, zone: tzinfo) -> str:
        if self.completed is None:
            return ""
        day = timezone.localtime(self.completed, zone).date()
        return f"{day:%B} {day.day}, {day.year}"

    def credit_lines(self) -> list[str]:
        return [f"{amount:.2f} {name}" for name, amount, _unit in self.credits]


def learner_name(user) -> str:
    return user.get_full_name().strip() or user.email or user.get_username()


def certificate_for(enrollment) -> Certificate:
    awards = enrollment.credit_awards.select_related("credit_type").order_by("credit_type__name")
    return Certificate(
        enrollment_id=enrollment.pk,
        learner=learner_name(enrollment.user),
        course_title=enrollment.course.title,
        course_id=enrollment.course.external_course_id,
        completed=enrollment.date_completed,
        credits=[(a.credit_type.name, a.credits, a.credit_type.unit) for a in awards],
    )


def _font() -> tuple[str, str]:
    """(regular, bold) font names: DejaVu where installed, else the Vera fonts reportlab ships."""
    from reportlab import rl_config
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    registered = pdfmetrics.getRegisteredFontNames()
    if "Certificate" in registered:
        return "Certificate", "Certificate-Bold"
    regular = next((p for p in FONT_CANDIDATES if p.exists()), None)
    bold = regular.with_name("DejaVuSans-Bold.ttf") if regular else None
    if regular is None or bold is None or not bold.exists():
        fonts = Path(rl_config.__file__).resolve().parent / "fonts"
        regular, bold = fonts / "Vera.ttf", fonts / "VeraBd.ttf"
    pdfmetrics.registerFont(TTFont("Certificate", str(regular)))
    pdfmetrics.registerFont(TTFont("Certificate-Bold", str(bold)))
    return "Certificate", "Certificate-Bold"


def certificate_pdf(certificate: Certificate, zone: tzinfo) -> bytes:
    """A one-page landscape certificate."""
    from reportlab.lib.pagesizes import landscape, letter
    from reportlab.pdfgen import canvas

    regular, bold = _font()
    buffer = io.BytesIO()
    width, height = landscape(letter)
    pdf = canvas.Canvas(buffer, pagesize=(width, height))
    pdf.setTitle(f"Certificate – {certificate.course_title}")
    pdf.setAuthor("LMS")
    pdf.setLineWidth(3)
    pdf.rect(30, 30, width - 60, height - 60)
    centre = width / 2

    def line(text: str, y: float, font: str, size: int) -> None:
        # Long titles shrink to fit the frame rather than run off the page.
        while size > 8 and pdf.stringWidth(text, font, size) > width - 120:
            size -= 1
        pdf.setFont(font, size)
        pdf.drawCentredString(centre, y, text)

    line("Certificate of Completion", height - 110, bold, 30)
    line("This certifies that", height - 165, regular, 14)
    line(certificate.learner, height - 205, bold, 26)
    line("has completed", height - 240, regular, 14)
    line(certificate.course_title, height - 280, bold, 20)
    line(f"Course {certificate.course_id}", height - 305, regular, 12)
    line(f"Completed on {certificate.completed_text(zone)}", height - 340, regular, 14)
    y = height - 380
    if certificate.credits:
        line("Credits awarded", y, bold, 14)
        for text in certificate.credit_lines():
            y -= 22
            line(text, y, regular, 13)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
