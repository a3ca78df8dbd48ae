#!/bin/sh
# How many CPUs this container may use, as a whole number: its CPU limit
# (Compose's `cpus`, `docker run --cpus`, a Kubernetes container's
# limits.cpu) rounded up, or the CPUs it may run on when that is fewer or
# there is no limit. Counting the host's CPUs instead (nproc alone,
# os.cpu_count(), nginx's `worker_processes auto`) would size a container
# limited to one CPU of a 32-core host for 32.
#
# The one routine both images use: Gunicorn's worker count
# (deploy/gunicorn.conf.py) and nginx's worker_processes
# (nginx/20-processes.envsh; the Dockerfile copies this file into the nginx
# image, which has no Python). POSIX sh, for dash in both.
#
#   container-cpus.sh [CGROUP_DIR]    CGROUP_DIR: /sys/fs/cgroup unless given
#
# The limit is in cgroup v2's cpu.max ("<quota> <period>" in microseconds,
# or "max <period>": none), or in cgroup v1's cpu/cpu.cfs_quota_us (-1:
# none) and cpu/cpu.cfs_period_us. nproc counts the CPUs this process may be
# scheduled on: its CPU set (`cpuset`), or every CPU of the host.
set -o errexit -o nounset

cgroup=${1:-/sys/fs/cgroup}
quota="" period=""
if [ -r "$cgroup/cpu.max" ]; then
    read -r quota period < "$cgroup/cpu.max"
elif [ -r "$cgroup/cpu/cpu.cfs_quota_us" ] && [ -r "$cgroup/cpu/cpu.cfs_period_us" ]; then
    quota=$(cat "$cgroup/cpu/cpu.cfs_quota_us")
    period=$(cat "$cgroup/cpu/cpu.cfs_period_us")
fi

cpus=$(nproc)
case $quota in
    '' | max | -1) ;;
    *)
        # Rounded up: a limit of 1.5 CPUs counts as two, half a CPU as one.
        limit=$(((quota + period - 1) / period))
        if [ "$limit" -lt "$cpus" ]; then
            cpus=$limit
        fi
        ;;
esac
echo "$cpus"
