#!/bin/sh
# Says its pid, then writes numbered 100-byte lines as fast as it can.
echo "pid $$"
exec seq -f '%.0f aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' 1 1000000000
