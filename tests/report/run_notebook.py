"""Runs a notebook's code cells top to bottom in one namespace (what "Run all" does),
without Jupyter: `python run_notebook.py NOTEBOOK`. Exits non-zero on the first error."""
import json
import sys

namespace = {"__name__": "__main__"}
for i, cell in enumerate(json.load(open(sys.argv[1]))["cells"]):
    if cell["cell_type"] == "code":
        exec(compile("".join(cell["source"]), f"{sys.argv[1]} cell {i}", "exec"), namespace)
