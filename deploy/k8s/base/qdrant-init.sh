#!/bin/bash
# Starts one Qdrant peer of the StatefulSet: peer 0 founds the cluster, the others join it
# (the scheme of Qdrant's own Helm chart). A restarted peer keeps its Raft state on its volume
# and ignores --bootstrap.
set -e
INDEX="${HOSTNAME##*-}"
FIRST="http://qdrant-0.qdrant-headless:6335"
if [ "$INDEX" = "0" ]; then
  exec ./entrypoint.sh --uri "$FIRST"
fi
exec ./entrypoint.sh --bootstrap "$FIRST" --uri "http://${HOSTNAME}.qdrant-headless:6335"
