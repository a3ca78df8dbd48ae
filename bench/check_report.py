"""The smoke test's check, after a quick `make bench`: the report holds every
figure (bench/report.py FIGURES) and the chart, and nothing in the run went
wrong: no scenario failed, no side counted an error (a side whose every
request got a 502 still has a rate), every idle WebSocket opened was held,
every ratio is within loose bounds, scenario 12's sides read their sessions
where they say, scenario 13's flood was one and met the budget (report.py
quick_run_problems). Exits 1 naming every problem.

    python check_report.py /results
"""

import sys

import report

problems = report.quick_run_problems(sys.argv[1] if len(sys.argv) > 1 else "/results")
if problems:
    print("the quick benchmark run went wrong:", file=sys.stderr)
    for problem in problems:
        print(f"- {problem}", file=sys.stderr)
    sys.exit(1)
print(
    f"the benchmark report holds all {len(report.FIGURES)} figures and the chart; no scenario "
    "failed, no side counted an error, every idle WebSocket was held, every ratio is within "
    "its loose bounds"
)
