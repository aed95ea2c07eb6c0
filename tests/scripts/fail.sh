#!/bin/sh
# Says so on stdout and stderr, then fails.
echo "starting"
echo "about to fail" >&2
exit 3
