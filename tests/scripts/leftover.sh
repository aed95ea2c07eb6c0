#!/bin/sh
# Leaves two children in its process group, one that SIGTERM ends and one that ignores it, says
# their pids, then exits (or, given "stay", runs until it is ended).
sleep 30 &
echo "pid $!"
trap '' TERM
sleep 30 &
echo "pid $!"
trap - TERM
if [ "$1" = stay ]; then
  while :; do sleep 0.1; done
fi
exit 0
