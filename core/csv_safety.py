"""Cells a spreadsheet shows as text: every CSV the product writes goes through csv_safe."""

from core.findings import visible

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_safe(value) -> str:
    """A cell a spreadsheet shows as text: formulas (=, +, -, @, tab, CR) get a leading apostrophe."""
    text = "" if value is None else visible(str(value))
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text
