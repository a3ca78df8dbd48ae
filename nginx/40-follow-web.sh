#!/bin/sh
# Run by the nginx image's entrypoint before nginx starts: keeps the list of
# Gunicorn servers that nginx sends requests to current, from then on in the
# background.
#
# nginx keeps its connections to Gunicorn open between requests (`upstream
# web` in default.conf.template), which spares both a TCP connection per
# request (docs/performance.md, scenario 2). An upstream block's servers are
# fixed when nginx loads its configuration, so every 2 s this script looks
# `web` up, asks each of its addresses for /readyz, writes the ready ones to
# the file the upstream block includes, and reloads nginx when that list
# changes: new nginx workers take the new list, old ones finish what they
# have in flight.
#
# Following readiness, not only the name: a replica that is stopping answers
# 503 from the start of its drain (deploy/run-draining.sh), so nginx has
# left it before its Gunicorn closes the connections nginx keeps. Otherwise a
# request sent on one just as it closes would fail, and a POST, which nginx
# cannot safely send twice, would get a 502. When no replica is ready
# (PostgreSQL down, say), all of them are kept: Django's 503 with Retry-After
# says more than nginx's 502.
#
# One round's answer alone changes nothing it could get wrong by chance
# (follow_round below): a replica joins when two rounds running find it
# ready, and leaves when it says it is not ready (503: it drains, at once) or
# when two rounds running get no answer from it. One slow /readyz (a busy
# replica, a lost packet) does not take it out of nginx.
#
# A round runs every 2 s for as long as nginx does, so it starts as few
# programs as it can (the shell's own read, case and echo do the rest): a
# program started costs a millisecond or so of CPU, and the round once
# started a score of them (docs/performance.md, the stack at rest).
#
# It must not stop: nothing else would keep nginx's list current. So no
# errexit; a failed reload (nginx -t refuses the new list, or the signal
# cannot be sent) puts back the list nginx last accepted and is tried again
# next round. Each round ends by touching a heartbeat file, which nginx's
# health check (nginx/healthcheck.sh) requires to be fresh: if this loop
# dies anyway, the container turns unhealthy.
#
#   40-follow-web.sh          what the entrypoint runs: a first round, then the loop
#   40-follow-web.sh round    one round, as the loop runs it (by hand, and in the tests)
set -o nounset

# Seconds between rounds. A draining replica answers 503 for DRAIN_SECONDS
# (5) before it stops: one interval, and one round, must fit in that
# (tests/test_shutdown_timing.py).
INTERVAL=2
# The file upstream web includes (default.conf.template).
SERVERS=${NGINX_ENVSUBST_OUTPUT_DIR:-/tmp/conf.d}/web-servers.inc
# What the rounds remember: the addresses nginx has (listed), those the last
# round found ready (ready), the loop's process id and its heartbeat.
STATE=${FOLLOW_WEB_DIR:-/tmp/follow-web}

log() {
    echo "follow-web: $*" >&2
}

# An address with Gunicorn's port, as nginx and URLs want it: an IPv6
# address in brackets.
authority() {
    case $1 in
        *:*) echo "[$1]:8000" ;;
        *) echo "$1:8000" ;;
    esac
}

# web's addresses, one a line (IPv4 or IPv6, as the name has them).
web_addresses() {
    timeout 5 getent hosts web | while read -r address _; do echo "$address"; done
}

# One replica's answer to /readyz: ready (200), not-ready (any other status:
# it drains, or its database is down) or silent (no answer within 2 s).
readiness() {
    if answer=$(timeout 2 wget -S -O /dev/null -t 1 "http://$(authority "$1")/readyz" 2>&1); then
        echo ready
    elif printf '%s\n' "$answer" | grep -q '^ *HTTP/[0-9.]* [0-9]'; then
        echo not-ready
    else
        echo silent
    fi
}

# Is $1 one of the words of $2?
among() {
    case " $2 " in
        *" $1 "*) return 0 ;;
        *) return 1 ;;
    esac
}

# nginx takes the servers file as it now is, or says why not (nginx -t: a
# reload signal alone would leave nginx on its old list, and say nothing).
nginx_reload() {
    nginx -t -q && nginx -s reload
}

follow_round() {
    [ -d "$STATE" ] || mkdir -p "$STATE"
    addresses=$(web_addresses)
    # Every replica at once: a round takes as long as the slowest answer, at
    # most the 2 s timeout, however many replicas are slow.
    answers=$(for address in $addresses; do
        echo "$address $(readiness "$address")" &
    done
    wait)
    ready="" refusing=""
    while read -r address answer; do
        case $answer in
            ready) ready="$ready $address" ;;
            not-ready) refusing="$refusing $address" ;;
        esac
    done <<EOF
$answers
EOF
    was_ready=""
    [ -e "$STATE/ready" ] && read -r was_ready < "$STATE/ready"
    echo "$ready" > "$STATE/ready"

    if [ -e "$STATE/listed" ]; then
        first=no
        read -r listed < "$STATE/listed"
        wanted="" seen=""
        # shellcheck disable=SC2086  # split on purpose: lists of addresses
        for address in $addresses $listed; do
            among "$address" "$seen" && continue
            seen="$seen $address"
            if among "$address" "$refusing"; then
                continue  # it says it is not ready: it drains
            elif among "$address" "$ready" && among "$address" "$was_ready"; then
                wanted="$wanted $address"  # ready twice running: in
            elif among "$address" "$listed" && { among "$address" "$ready" || among "$address" "$was_ready"; }; then
                wanted="$wanted $address"  # listed, and ready in one of two rounds: stays
            fi
        done
    else
        # The first round, before nginx starts: nothing to agree with yet.
        first=yes
        listed=""
        wanted=$ready
    fi
    # No replica ready: all of them (see above). No address at all (every
    # replica stopped, or the name did not resolve): what nginx has.
    # Sorted, one space between: the form it is compared with next round.
    # shellcheck disable=SC2046,SC2086  # split on purpose: a list of addresses
    set -- $(printf '%s\n' ${wanted:-$addresses} | sort -u)
    wanted="$*"
    if [ -z "$wanted" ] || [ "$wanted" = "$listed" ]; then
        return 0
    fi

    if [ -e "$SERVERS" ]; then
        cp "$SERVERS" "$SERVERS.accepted"
    fi
    for address in $wanted; do
        echo "server $(authority "$address");"
    done > "$SERVERS.new" && mv "$SERVERS.new" "$SERVERS"
    if [ "$first" = yes ]; then
        log "web's ready replicas are $wanted"
    elif nginx_reload; then
        log "web's ready replicas are now $wanted; nginx reloaded"
    else
        # nginx goes on with the list it last accepted; so does this file,
        # and the next round tries again.
        log "web's ready replicas are now $wanted, but nginx did not reload;" \
            "it keeps $listed; trying again in $INTERVAL s"
        mv "$SERVERS.accepted" "$SERVERS"
        return 1
    fi
    echo "$wanted" > "$STATE/listed"
}

follow_loop() {
    while true; do
        sleep "$INTERVAL"
        follow_round
        # A write, which sets the file's time as touch would.
        echo > "$STATE/heartbeat"
    done
}

case ${1:-start} in
    start)
        # Nothing from an earlier life of this container (Kubernetes keeps
        # /tmp, an emptyDir, across restarts of the container).
        rm -rf "$STATE"
        follow_round
        # With no address for web yet, the name itself: nginx then refuses
        # to start with "host not found in upstream", and Docker restarts it.
        [ -s "$SERVERS" ] || echo "server web:8000;" > "$SERVERS"
        touch "$STATE/heartbeat"
        "$0" loop &
        echo $! > "$STATE/pid"
        ;;
    loop) follow_loop ;;
    round) follow_round ;;
    *)
        echo "usage: $0 [round]" >&2
        exit 2
        ;;
esac
