"""Prints the text of every page of each PDF given (pypdf), one file after another,
separated by a line `== PATH`. Used by the report test to check that figures carry real,
extractable text (axis labels, titles), not outlines."""
import sys

from pypdf import PdfReader

for path in sys.argv[1:]:
    print(f"== {path}")
    for page in PdfReader(path).pages:
        print(page.extract_text())
