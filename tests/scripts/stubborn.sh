#!/bin/sh
# Ignores SIGTERM: only SIGKILL ends it. Says its pid, then ticks.
trap '' TERM
echo "pid $$"
while :; do
  sleep 0.1
  echo tick
done
