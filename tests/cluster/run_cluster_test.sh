#!/usr/bin/env bash
# The workflow through a real one-node SLURM cluster with `--profile slurm` (root, Debian/Ubuntu).
#
#   bash tests/cluster/run_cluster_test.sh [--keep]
#
# 1. tests/cluster/slurm.sh up: installs munge + slurmctld + slurmd (apt) if missing and starts
#    them, with a fake GPU and two partitions, cpu and gpu.
# 2. Run 1: `snakemake --cores 2 --profile slurm`, from the repository root as a user types it,
#    with a site file naming the partitions (HMIFBENCH_SITE, as a user's site.yaml would), on a tiny config (2 scenes of 32x32 plus a
#    train scene, one degradation; upsample, gsa, two GPU probe methods, one of them trained,
#    and a probe that gets OOM-killed once) that also lists a scene that cannot be prepared.
#    That job exits non-zero for real, is retried once with twice the memory, fails again,
#    and the run must end non-zero with the group reported as failed.
# 3. Run 2: the same config without the bad scene, i.e. the resume after fixing a failure.
#    The OOM-killed group is retried with twice the memory and completes; tables are made.
#    Between the runs, `hmifbench plan` predicts what run 2 will submit.
# 4. tests/cluster/check_cluster_run.py reads SLURM's records (scontrol, squeue), the plugin's
#    logs in .snakemake/slurm_logs and the results: which jobs ran, where, with a GPU or not.
# 5. Stops the daemons that step 1 started (by pid), unless --keep or they were already up.
#
# Exit 0: passed; 1: failed (the work folder is kept and named); 77: cannot run here (not root,
# no apt, packages not installable, a real cluster's slurm.conf present), i.e. skipped.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/tests/cluster
KEEP=0
[ "${1:-}" = --keep ] && KEEP=1
LIMIT=${HMIFBENCH_CLUSTER_TIMEOUT:-900}   # hard limit per snakemake run (a guard against hangs), seconds
T0=$SECONDS
say() { echo "[cluster-test] $*"; }

[ "$(id -u)" = 0 ] || { say "SKIP: needs root (it installs and starts SLURM)"; exit 77; }
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f "$REPO/.venv/bin/activate" ]; then
    . "$REPO/.venv/bin/activate"
fi
python -c "import hmifbench, snakemake" 2>/dev/null \
    || { say "SKIP: hmifbench and snakemake are not installed in this Python"; exit 77; }
if ! python -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
    pip install -q "snakemake-executor-plugin-slurm>=2.8,<3" \
        || { say "SKIP: cannot install snakemake-executor-plugin-slurm"; exit 77; }
fi

WAS_UP=0
scontrol ping 2>/dev/null | grep -q UP && WAS_UP=1
bash "$HERE/slurm.sh" up
rc=$?
[ "$rc" = 77 ] && exit 77
[ "$rc" = 0 ] || { say "FAIL: could not start the test cluster"; exit 1; }
T_UP=$((SECONDS - T0))

WORK=$(mktemp -d /tmp/hmifbench-cluster.XXXXXX)
cleanup() {
    # cancel anything of ours still queued (a run killed by the time limit leaves jobs behind)
    local ids
    ids=$(scontrol show job -o 2>/dev/null | grep " WorkDir=$WORK " | grep -E "JobState=(PENDING|RUNNING)" \
          | sed -E 's/^JobId=([0-9]+).*/\1/')
    [ -n "$ids" ] && scancel $ids
    if [ "$KEEP" = 0 ] && [ "$WAS_UP" = 0 ]; then bash "$HERE/slurm.sh" down; fi
}
trap cleanup EXIT

cat >"$WORK/config_broken.yaml" <<EOF
seed: 0
allow_cpu_fallback: true      # the test cluster's GPU is fake: torch sees none behind it
plugins: [$HERE/plugins]
datasets:
  synthetic:
    scenes: [scene01, scene02, broken]   # 'broken' cannot be prepared: a real non-zero exit
    train_scenes: [scene03]
    options: {size: 32}
degradations: [gauss-fwhm-x4]
methods:
  upsample: {}
  gsa: {}
  oom_probe: {}
  gpu_probe: {}
  gpu_trained_probe: {}
EOF
sed 's/, broken\]/]/' "$WORK/config_broken.yaml" >"$WORK/config.yaml"
export HMIFBENCH_PROBE_DIR=$WORK
# The site settings a user keeps in site.yaml: here in the work folder, so that a user's own
# site.yaml in the checkout is neither used nor touched. GPU jobs must land on 'gpu' through it
# ('cpu' is SLURM's default partition).
cat >"$WORK/site.yaml" <<EOF
partitions:
  cpu: {name: cpu, max_runtime_min: 600, max_mem_mb: 64000, max_threads: 2}
  gpu: {name: gpu, max_runtime_min: 600, max_mem_mb: 64000, max_threads: 2, max_gpus: 1}
EOF
export HMIFBENCH_SITE=$WORK/site.yaml

run() {  # run N CONFIG: one snakemake run through SLURM, as a user would start it
    local n=$1 t=$SECONDS
    (cd "$REPO" && timeout -s KILL "$LIMIT" snakemake --cores 2 --profile slurm \
        --directory "$WORK" --configfile "$WORK/$2" \
        --slurm-init-seconds-before-status-checks 2 --slurm-keep-successful-logs \
        >"$WORK/run$n.log" 2>&1)
    echo $? >"$WORK/run$n.rc"
    scontrol show job -o >"$WORK/jobs_run$n.txt"
    say "run $n: exit $(cat "$WORK/run$n.rc") after $((SECONDS - t)) s"
}

run 1 config_broken.yaml
(cd "$WORK" && find results -type f | sort >files_run1.txt)
# What the resume will submit, predicted before it runs (check_cluster_run.py compares)
(cd "$REPO" && python -m hmifbench.cli plan --configfile "$WORK/config.yaml" --directory "$WORK" \
    --cores 2 --json >"$WORK/plan_run2.json" 2>"$WORK/plan_run2.err")
run 2 config.yaml

python "$HERE/check_cluster_run.py" "$WORK" | tee "$WORK/checks.txt"
status=${PIPESTATUS[0]}
summary=$(tail -1 "$WORK/checks.txt")
trap - EXIT
cleanup
say "total $((SECONDS - T0)) s (cluster up: ${T_UP} s)"
if [ "$status" = 0 ]; then
    rm -rf "$WORK"
    say "PASSED"
else
    say "FAILED: see $WORK (run1.log, run2.log, .snakemake/slurm_logs, /var/log/slurm)"
    status=1
fi
echo "$summary"     # 'cluster: N passed, M failed' as the closing line
exit $status
