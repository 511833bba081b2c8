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


def csv_safe_reversible(value) -> str:
    """csv_safe that csv_unescape undoes exactly: a cell that starts with an apostrophe gets one more too."""
    text = "" if value is None else visible(str(value))
    return "'" + text if text.startswith((*FORMULA_STARTS, "'")) else text


def csv_unescape(cell: str) -> str:
    """A cell written by csv_safe_reversible, as it was before."""
    return cell[1:] if cell.startswith("'") else cell
