#!/bin/sh
# Run as root in the tests container, by `make test`, before the stack starts
# (tests/coverage/compose.yml): puts the tests image's coverage package and
# sitecustomize.py in the coverage-tools volume, where the app's containers,
# from the production image without coverage, import them. The same Python
# (3.13) in both images, so coverage's C tracer loads there too.
set -o errexit -o nounset

package=$(python -c 'import coverage, os; print(os.path.dirname(coverage.__file__))')
find /coverage-tools -mindepth 1 -delete
cp -a "$package" /coverage-tools/
cp tests/coverage/sitecustomize.py /coverage-tools/
# The app's user (uid 10001) writes its data files here; root, combining
# them, reads and removes them.
chown 10001:10001 /coverage-data
