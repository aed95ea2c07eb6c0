#!/bin/sh
# A line echo: each line comes back as "echo: LINE"; the line "exit N" ends it with code N.
while IFS= read -r line; do
  case "$line" in
    "exit "*) exit "${line#exit }" ;;
  esac
  printf 'echo: %s\n' "$line"
done
