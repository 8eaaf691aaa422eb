#!/usr/bin/env bash
# The main job. Without arguments: the built-in simulated site (PLC, RS-485 and DL/T 645
# meters on serial pty pairs, cameras streaming real video, a local broker) with Headframe
# running against it and a live view of the records. With a config file: Headframe against
# your real devices, plus the live view of its broker.
#   bash scripts/run-site.sh                       # simulated site, Ctrl-C to stop
#   bash scripts/run-site.sh /etc/headframe/headframe.yaml
#   SITE_DURATION=60 bash scripts/run-site.sh      # stop by itself after 60 s
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
if [[ $# -ge 1 ]]; then
  .venv/bin/headframe check "$1"
  .venv/bin/headframe run -c "$1" &
  agent=$!
  trap 'kill -TERM $agent 2>/dev/null; wait $agent' EXIT
  # the view connects as the config says: its broker, TLS settings, username and password file
  .venv/bin/python -m hil watch --config "$1" ${SITE_DURATION:+--duration "$SITE_DURATION"}
else
  exec .venv/bin/python -m hil site --workdir var/site --agent --watch ${SITE_DURATION:+--duration "$SITE_DURATION"}
fi
