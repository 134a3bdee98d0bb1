#!/bin/bash
# Written by oscar's interLink plugin: runs one pod's containers (init containers in order, then
# the containers side by side). Each container's output is prefixed line by line with its UTC
# time; its start, exit code and end are left in state/.
cd @{folder} || exit 127
export TZ=UTC
echo $$ > run.pid  # read by the local backend after a restart

run_container() {
  local name="$1" code
  date -u +%Y-%m-%dT%H:%M:%SZ > "state/$name.started"
  /bin/sh "containers/$name.sh" < /dev/null 2>&1 \
    | while IFS= read -r line || [ -n "$line" ]; do
        printf '%(%Y-%m-%dT%H:%M:%SZ)T %s\n' -1 "$line"
      done >> "logs/$name.log"
  code=${PIPESTATUS[0]}
  echo "$code" > "state/$name.exit.partial" && mv "state/$name.exit.partial" "state/$name.exit"
  date -u +%Y-%m-%dT%H:%M:%SZ > "state/$name.finished"
  return "$code"
}

# The pre-exec annotation: the site's own preparation (module load, ...).
@{pre_exec}

for name in @{init_containers}; do
  run_container "$name" || exit $?
done

pids=()
for name in @{containers}; do
  run_container "$name" &
  pids+=($!)
done
status=0
for pid in ${pids[*]}; do
  wait "$pid" || { code=$?; [ "$status" -eq 0 ] && status=$code; }
done
exit "$status"
