#!/bin/sh
# Short mode of the keyspace run: 20,000 keys, then an empty database.
bin=tools/fence_keyspace/fence_keyspace
out=$($bin --keys 20000 --threads 4 --ttl 400ms --script_timeout 200ms --retention 1s 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: exit $rc"; exit 1; }
echo "$out" | grep -q '"dbsize_after":0' || { echo "FAIL: keys left"; exit 1; }
