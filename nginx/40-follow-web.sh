#!/bin/sh
# Run by the nginx image's entrypoint before nginx starts: keeps the list of
# Gunicorn servers that nginx sends requests to current, from then on in the
# background.
#
# nginx keeps its connections to Gunicorn open between requests (`upstream
# web` in default.conf.template), which spares both a TCP connection per
# request (docs/performance.md, scenario 2). An upstream block's servers are
# fixed when nginx loads its configuration, so every 2 s this script looks
# `web` up, asks each of its addresses for /readyz, writes those that answer
# 200 to the file the upstream block includes, and reloads nginx when that
# list changes: new nginx workers take the new list, old ones finish what they
# have in flight.
#
# Following readiness, not only the name: a replica that is stopping answers
# 503 from the start of its drain (deploy/run-draining.sh), so nginx has
# left it before its Gunicorn closes the connections nginx keeps. Otherwise a
# request sent on one just as it closes would fail, and a POST, which nginx
# cannot safely send twice, would get a 502. When no replica is ready
# (PostgreSQL down, say), all of them are kept: Django's 503 with Retry-After
# says more than nginx's 502.
set -o errexit -o nounset

SERVERS=/tmp/conf.d/web-servers.inc

ready_servers() {
    all=$(getent hosts web | awk '{ print $1 }' | sort)
    ready=""
    for address in $all; do
        if wget -q -t 1 -T 2 -O /dev/null "http://$address:8000/readyz"; then
            ready="$ready $address"
        fi
    done
    for address in ${ready:-$all}; do
        echo "server $address:8000;"
    done
}

# Writes the list when it has changed; fails when it has not, or is empty
# (web has no address at all: every replica stopped).
servers_update() {
    ready_servers > "$SERVERS.new"
    if [ -s "$SERVERS.new" ] && ! cmp -s "$SERVERS.new" "$SERVERS"; then
        mv "$SERVERS.new" "$SERVERS"
    else
        rm -f "$SERVERS.new"
        return 1
    fi
}

# Before nginx starts. With no address for web yet, the name itself: nginx
# then refuses to start with "host not found in upstream", and Docker
# restarts it.
servers_update || [ -s "$SERVERS" ] || echo "server web:8000;" > "$SERVERS"

(
    while sleep 2; do
        if servers_update; then
            listed=$(sed -e 's/^server //' -e 's/;$//' "$SERVERS" | paste -s -d ' ' -)
            echo "follow-web: web's ready replicas are now $listed; reloading nginx" >&2
            nginx -s reload
        fi
    done
) &
