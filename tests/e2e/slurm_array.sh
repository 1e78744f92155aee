#!/usr/bin/env bash
# The Slurm path for real: a single-node Slurm on localhost (munged, slurmctld and slurmd from Debian's munge and
# slurm-wlm, each with its own key, socket, ports and spool folders under the test's scratch folder), a job array
# submitted with scripts/slurm/render-array.sbatch over a small manifest (test-tiny, random weights, CPU), then:
# every output exists exactly once, each array task rendered its own shard, and a second array skips them all.
# When the daemons cannot start, the test fails with the reason and their logs: it never skips.
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/render_lib.sh"
cd "$WORK"
SBATCH_SCRIPT="$ROOT/scripts/slurm/render-array.sbatch"

die() {  # die REASON: fails the test with the reason and the daemons' logs
    fail "$1"
    for f in "$WORK"/slurm/log/* "$WORK"/slurm/munge/log; do
        [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}

for tool in munged slurmctld slurmd sbatch sinfo squeue; do
    command -v "$tool" >/dev/null ||
        die "$tool not found: install Debian's slurm-wlm and munge (scripts/install-deps.sh does)"
done

# ---- a single-node cluster under $WORK/slurm, stopped on exit ----
S="$WORK/slurm"
mkdir -p "$S/munge" "$S/ctld" "$S/spool" "$S/log"
chmod 755 "$S" "$S/munge"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ -s "$S/munge/pid" ] && kill "$(cat "$S/munge/pid")" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

USER_NAME=$(id -un)
head -c 1024 /dev/urandom > "$S/munge/key" && chmod 400 "$S/munge/key"
# --force: munged refuses to run as root, and our scratch folder's permissions, without it.
munged --force --key-file="$S/munge/key" --socket="$S/munge/sock" --pid-file="$S/munge/pid" \
    --log-file="$S/munge/log" --seed-file="$S/munge/seed" 2>"$S/log/munged.err" ||
    die "munged did not start (as $USER_NAME): $(tail -n 3 "$S/log/munged.err" "$S/munge/log" 2>/dev/null | tr '\n' ' ')"

# Two free ports on localhost (a second cluster on this machine, or a real one, keeps its own).
read -r CTLD_PORT D_PORT < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
CPUS=$(nproc)
cat > "$S/slurm.conf" <<EOF
ClusterName=lsynctest
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$D_PORT
SlurmUser=$USER_NAME
SlurmdUser=$USER_NAME
AuthType=auth/munge
AuthInfo=socket=$S/munge/sock
CredType=cred/munge
StateSaveLocation=$S/ctld
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/ctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
# No cgroups, no accounting: what a container or a bare CI machine has.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
NodeName=lsyncnode NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=lsync Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$S/slurm.conf"
slurmctld -D -f "$SLURM_CONF" >"$S/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -N lsyncnode -f "$SLURM_CONF" >"$S/log/slurmd.out" 2>&1 &
PIDS+=($!)
up=""
for _ in $(seq 150); do
    sinfo -h -o %t 2>/dev/null | grep -qx idle && { up=1; break; }
    kill -0 "${PIDS[0]}" 2>/dev/null || die "slurmctld exited at start (as $USER_NAME): $(tail -n 1 "$S/log/slurmctld.out")"
    kill -0 "${PIDS[1]}" 2>/dev/null || die "slurmd exited at start (as $USER_NAME): $(tail -n 1 "$S/log/slurmd.out")"
    sleep 0.2
done
[ -n "$up" ] || die "the Slurm node did not become idle within 30 s (as $USER_NAME): $(sinfo 2>&1 | tr '\n' ' ')"
echo "slurm up as $USER_NAME: $(sinfo -h -o '%P %t %c cpus' 2>&1)"

# ---- the array: 5 jobs over 3 tasks ----
make_face_clip clip.mp4 0.5 30 || fail "make clip"
make_speech speech.wav 0.4 || fail "make speech"
mkdir -p jobs/out logs
{
    echo "video,audio,output,seed"
    for i in 0 1 2 3 4; do echo "../clip.mp4,../speech.wav,out/o$i.mp4,$i"; done
} > jobs/manifest.csv
submit() {  # submit LABEL: the array over the manifest; waits; prints sbatch's exit code (the highest task's)
    # The script asks for a GPU and 8 CPUs; this node has neither to spare, so those are overridden here.
    LATENTSYNC="$BIN" LSYNC_DEVICES=cpu LSYNC_SUMMARY_DIR="$WORK/logs/$1" timeout 100 \
        sbatch --wait --quiet --array=0-2 --gres=none --cpus-per-task=1 --output="$WORK/logs/$1-%A_%a.out" \
        --chdir="$WORK" "$SBATCH_SCRIPT" jobs/manifest.csv \
        --model test-tiny --weights random --model-dir "$FIX" --steps 2 --crf 0 -q
    echo "rc=$?"
}
out=$(submit first 2>&1)
grep -q "rc=0" <<<"$out" || { cat logs/first-* >&2; die "the array failed: $out"; }
[ "$(find jobs/out -name '*.mp4' | wc -l)" = 5 ] || fail "expected 5 outputs: $(ls jobs/out)"
for i in 0 1 2 3 4; do
    [ -s "jobs/out/o$i.mp4" ] || fail "o$i.mp4 missing"
    [ ! -e "jobs/out/o$i.mp4.lsync-work" ] || fail "o$i.mp4: work folder left"
done
find jobs -name '.*partial*' | grep -q . && fail "partial outputs left"
# Each job rendered exactly once, by the task of its shard (job index mod 3).
python3 - "$WORK/logs/first" <<'PY' || fail "summaries: see above"
import json, glob, sys
rendered = {}
for path in glob.glob(sys.argv[1] + "/summary-*.json"):
    s = json.load(open(path))
    assert s["shard"]["count"] == 3 and s["shard"]["source"] == "SLURM_ARRAY_TASK_ID", s["shard"]
    for j in s["jobs"]:
        assert j["job"] % 3 == s["shard"]["index"], (j, s["shard"])
        assert j["status"] == "ok", j
        rendered[j["job"]] = rendered.get(j["job"], 0) + 1
assert rendered == {i: 1 for i in range(5)}, rendered
PY

# A second array: every output is skipped, nothing is rendered again.
touch -d '2000-01-01' jobs/out/*.mp4
before=$(md5sum jobs/out/*.mp4)
out=$(submit second 2>&1)
grep -q "rc=0" <<<"$out" || { cat logs/second-* >&2; fail "the second array failed: $out"; }
python3 - "$WORK/logs/second" <<'PY' || fail "second run: see above"
import json, glob, sys
seen = 0
for path in glob.glob(sys.argv[1] + "/summary-*.json"):
    s = json.load(open(path))
    assert s["totals"]["skipped"] == s["totals"]["jobs"], s["totals"]
    seen += s["totals"]["jobs"]
assert seen == 5, seen
PY
[ "$(md5sum jobs/out/*.mp4)" = "$before" ] || fail "the second array changed outputs"
[ -z "$(find jobs/out -newer jobs/manifest.csv -name '*.mp4')" ] || fail "the second array rewrote outputs"
finish
