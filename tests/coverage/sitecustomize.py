"""Python imports this module as it starts, when it is on the path: in the
stack `make test` runs, the coverage-tools volume is (tests/coverage/compose.yml).
It starts coverage for the whole of the process, as configured by the file
COVERAGE_PROCESS_START names, and does nothing where that is unset."""

import coverage

coverage.process_startup()
