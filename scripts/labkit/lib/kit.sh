# shellcheck shell=bash
# The lab's own copy of `scripts/lab` and `scripts/labkit`, in $OSHA_LAB_DIR/kit. Everything
# that outlives a `scripts/lab` command runs from it: the nodes' power supplies and PID 1s,
# the systemctl shims, the runit run scripts, the containers' entry point and the BMC
# emulator. So the running lab does not depend on the checkout that started it (a worktree
# or a fresh clone may be deleted), and any checkout of the same commit sees the same lab.
# `up` installs it; a file that differs is replaced atomically (rename), so a running script
# keeps reading its old copy, and the log names every file that changed. Sourced.

KIT=$LAB_DIR/kit

# kit_source_root: the scripts/ directory this command runs from.
kit_source_root() { dirname "$LABKIT"; }

# kit_files ROOT: the kit's files under ROOT (relative, NUL-separated, sorted).
kit_files() {
    (cd "$1" && find lab labkit -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 2>/dev/null | sort -z)
}

# install_kit: copy what differs into $KIT; print the changed paths on stdout (one a line).
install_kit() {
    local src rel dst tmp
    src=$(kit_source_root)
    [ "$src" = "$KIT" ] && return 0 # running from the kit itself
    mkdir -p "$KIT"
    while IFS= read -r -d '' rel; do
        dst=$KIT/$rel
        cmp -s "$src/$rel" "$dst" && [ "$(stat -c %a "$src/$rel")" = "$(stat -c %a "$dst")" ] && continue
        mkdir -p "$(dirname "$dst")"
        tmp=$dst.new.$$
        if ! cp -p "$src/$rel" "$tmp" || ! mv -f "$tmp" "$dst"; then
            die "cannot install $dst" "is $KIT writable?"
        fi
        echo "$rel"
    done < <(kit_files "$src")
    # files the source no longer has
    while IFS= read -r -d '' rel; do
        [ -e "$src/$rel" ] && continue
        rm -f "$KIT/$rel"
        echo "$rel (removed)"
    done < <(kit_files "$KIT")
}

# kit_up: install the kit and log what changed and where it came from. KIT_CHANGED holds
# the changed paths, one a line.
# shellcheck disable=SC2034 # read by scripts/lab (start_bmc)
KIT_CHANGED=''
kit_up() {
    local changed first=0 src
    src=$(kit_source_root)
    [ -e "$KIT/lab" ] || first=1
    changed=$(install_kit) || exit 1
    # shellcheck disable=SC2034 # read by scripts/lab (start_bmc)
    KIT_CHANGED=$changed
    git -C "$src" rev-parse HEAD >"$KIT/.source.tmp" 2>/dev/null || echo unknown >"$KIT/.source.tmp"
    echo "$src" >>"$KIT/.source.tmp"
    mv -f "$KIT/.source.tmp" "$KIT/.source"
    if [ $first = 1 ]; then
        log "kit: installed $(echo "$changed" | grep -c .) files in $KIT (from $src)"
    elif [ -n "$changed" ]; then
        log "kit: updated from $src: $(echo "$changed" | paste -sd, | sed 's/,/, /g')"
    fi
}

# kit_runs_from PID: does the process PID run a file of the kit (its command line names it)?
kit_runs_from() { [[ $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) == *"$KIT/"* ]]; }

# kit_check_power_supplies: name every node whose power supply still runs from a checkout.
# It keeps running (bash has the script open), but it boots the node from that checkout's
# hostinit.sh, so a deleted checkout means a node that cannot reboot. It moves to the kit at
# its next power-on from `scripts/lab` (power off and on, or `down` then `up`).
kit_check_power_supplies() {
    local node p
    for node in "${NODES[@]}"; do
        p=$(pid_from "$(node_dir "$node")/power.pid") || continue
        kit_runs_from "$p" ||
            log "node $node: its power supply (pid $p) runs from $(tr '\0' ' ' <"/proc/$p/cmdline" | awk '{print $2}'), not the kit; it moves to the kit at its next power-on"
    done
}
