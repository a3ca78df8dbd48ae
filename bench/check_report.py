"""The smoke test's check, after a quick `make bench`: the report holds every
figure (bench/report.py FIGURES) and the chart. Exits 1 naming what is missing.

    python check_report.py /results
"""

import sys

import report

missing = report.missing_figures(sys.argv[1] if len(sys.argv) > 1 else "/results")
if missing:
    print("the benchmark report lacks: " + "; ".join(missing), file=sys.stderr)
    sys.exit(1)
print(f"the benchmark report holds all {len(report.FIGURES)} figures and the chart")
