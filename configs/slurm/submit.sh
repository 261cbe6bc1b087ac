#!/usr/bin/env bash
# Submit a psysim-paper study to Slurm: a job array of N shards, then the report job after it.
#
#   configs/slurm/submit.sh --shards N --log-dir DIR [--report-dir DIR] [--tasks LIST]
#                           [--sbatch OPTION]... [--report-sbatch OPTION]... -- [psysim-paper options]
#
# --tasks LIST  array indices to run (default 1-N); e.g. `--tasks 3` re-runs only shard 3/N
#               (resume reuses its finished samples) and queues the report again after it.
# --sbatch OPT  an option for the array's sbatch (repeatable): --sbatch=--gres=gpu:1 --sbatch=--partition=gpu
# --report-sbatch OPT  the same for the report job.
# Output files (one per task, and the report's) go to <log-dir>/slurm/. Prints both job ids.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { sed -n '3,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

shards="" log_dir="" report_dir="" tasks=""
array_opts=() report_opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --shards) shards=$2; shift 2;;
    --log-dir) log_dir=$2; shift 2;;
    --report-dir) report_dir=$2; shift 2;;
    --tasks) tasks=$2; shift 2;;
    --sbatch) array_opts+=("$2"); shift 2;;
    --sbatch=*) array_opts+=("${1#--sbatch=}"); shift;;
    --report-sbatch) report_opts+=("$2"); shift 2;;
    --report-sbatch=*) report_opts+=("${1#--report-sbatch=}"); shift;;
    --) shift; break;;
    -h|--help) usage;;
    *) echo "submit.sh: unknown option $1 (psysim-paper options go after --)" >&2; usage;;
  esac
done
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: --shards N is required (a positive integer)" >&2; exit 2; }
[ -n "$log_dir" ] || { echo "submit.sh: --log-dir DIR is required (a directory every node can write)" >&2; exit 2; }
mkdir -p "$log_dir/slurm"
log_dir=$(cd "$log_dir" && pwd)
report_dir=${report_dir:-$log_dir/report}

array=$(PSYSIM_SHARDS=$shards sbatch --parsable --array="${tasks:-1-$shards}" \
  --output="$log_dir/slurm/study-%A_%a.out" "${array_opts[@]}" \
  "$here/study.sbatch" --log-dir "$log_dir" "$@")
array=${array%%;*}
report=$(sbatch --parsable --dependency="afterany:$array" --output="$log_dir/slurm/report-%j.out" \
  "${report_opts[@]}" "$here/report.sbatch" "$log_dir" "$report_dir")
report=${report%%;*}
echo "array job $array (shards ${tasks:-1-$shards} of $shards), report job $report -> $report_dir"
echo "outputs: $log_dir/slurm/"
