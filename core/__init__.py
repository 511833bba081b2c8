"""Neutral ground: the vocabulary that the domain apps, the import pipeline, the jobs and the faces share.

Nothing here imports any of them: codes, messages and findings (findings.py), spreadsheet-safe CSV
cells (csv_safety.py), what every imported record carries (records.py), and how e-mails compare (text.py).
"""
