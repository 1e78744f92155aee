# Shared helpers for the end-to-end scripts: a scratch directory and assertions on exit codes and files.
set -u
BIN=$(realpath "${1:?usage: $0 path/to/latentsync}")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lsync_e2e.XXXXXX")
chmod 755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
FAILS=0
# tests/e2e/safetensors_read.py for the Python snippets that read tensors.
export PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)${PYTHONPATH:+:$PYTHONPATH}"

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# expect_rc CODE MESSAGE_SUBSTRING -- command...: runs the command, checks its exit code, that stderr has
# exactly one line mentioning the substring, and that no partial output is left in $WORK (outside a render's work
# folder: a render writes its output inside it until the join's end, so a killed one leaves it there, in the folder
# it keeps for --resume, which the next run of that output clears).
expect_rc() {
    local want=$1 text=$2
    shift 3
    local err rc
    err=$("$@" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" != "$want" ]; then fail "exit $rc (want $want): $*"$'\n'"$err"; return; fi
    if ! grep -qF -- "$text" <<<"$err"; then fail "message lacks '$text': $*"$'\n'"$err"; fi
    if [ "$(grep -c '^\[error\]' <<<"$err")" != 1 ]; then fail "not exactly one error line: $*"$'\n'"$err"; fi
    if find "$WORK" -name '*.partial-*' -not -path '*.lsync-work/*' | grep -q .; then
        fail "partial output left behind by: $*"
    fi
    # A failed render removes its work folder (only an interrupted one keeps it, for --resume).
    if [ -z "${WORK_FOLDERS_EXPECTED:-}" ] && find "$WORK" -name '*.lsync-work' | grep -q .; then
        fail "render work folder left behind by: $*"
    fi
}

# stop_when SIGNAL CONDITION CMD...: runs CMD in the background, sends it SIGNAL as soon as the shell command
# CONDITION succeeds (checked every 0.05 s for up to 60 s, or until CMD ends by itself), and prints CMD's exit
# code (CMD's own stdout is dropped; its stderr goes where the caller's does). Interrupting "once the work is under way" this way holds however fast the machine is.
stop_when() {
    local signal=$1 condition=$2
    shift 2
    "$@" >/dev/null &
    local pid=$! i
    for i in $(seq 1200); do
        eval "$condition" >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill "-$signal" "$pid" 2>/dev/null
    wait "$pid"
    echo $?
}

finish() {
    if [ "$FAILS" -gt 0 ]; then echo "$FAILS failure(s)" >&2; exit 1; fi
    echo "all passed"
}
