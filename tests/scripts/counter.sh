#!/bin/sh
# Counts up, one number a line, every 50 ms.
i=0
while :; do
  i=$((i + 1))
  echo "$i"
  sleep 0.05
done
