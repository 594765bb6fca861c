#!/bin/sh
# Start or resume: the server command of the container image (`baffle-start-server`) and of deploy/k8s/, safe
# to run again after any stop (a pod restarted by the cluster, a container killed with SIGKILL):
#
#   baffle-start-server RUN_DIR CONFIG [serve flags...]
#
# - RUN_DIR holds no run yet (no config.json): `baffle serve --out RUN_DIR --config CONFIG [flags]`, a new run.
# - RUN_DIR holds one: `baffle serve --resume RUN_DIR [flags]`, which continues after the last checkpointed
#   round (no round lost or counted twice), and exits 0 without training when the run is finished.
#   The run's configuration is then the one saved in RUN_DIR/config.json: CONFIG is not read again.
#
# The flags are those both forms take: --tokens, --host, --port, --dashboard-token, --tls-cert/--tls-key,
# --quiet, and --set of server keys (minClients, roundTimeout, quorum, heartbeat, maxFrameBytes). Run keys go
# in CONFIG. An empty flag value (an unset variable in a manifest) is dropped together with its flag.
set -eu

if [ $# -lt 2 ]; then
  echo "usage: baffle-start-server RUN_DIR CONFIG [serve flags...]" >&2
  exit 2
fi
run_dir=$1
config=$2
shift 2

# Drop "--flag ''" pairs, so that e.g. --dashboard-token "$(BAFFLE_DASHBOARD_TOKEN)" is optional.
n=$#
while [ "$n" -gt 0 ]; do
  a=$1
  shift
  n=$((n - 1))
  case $a in
    --*)
      if [ "$n" -gt 0 ] && [ -z "$1" ]; then
        shift
        n=$((n - 1))
        continue
      fi
      ;;
  esac
  set -- "$@" "$a"
done

if [ -f "$run_dir/config.json" ]; then
  echo "baffle-start-server: $run_dir holds a run: resuming it"
  exec baffle serve --resume "$run_dir" "$@"
fi
echo "baffle-start-server: $run_dir holds no run: starting one from $config"
exec baffle serve --out "$run_dir" --config "$config" "$@"
