#!/usr/bin/env bash
# Mutation testing: do the tests notice when the code is wrong?
#   - Rust: cargo-mutants on the host-testable crates, each mutant against
#     host tests only: bulkhead (the hypervisor's pure modules; src/arch and
#     src/hyp build only for aarch64 and are left out, .cargo/mutants.toml),
#     bulkhead-abi (guest-lib/abi) and bulkhead-config (scripts/config);
#   - assembly: the bugs listed in scripts/planted-bugs.txt, planted one at
#     a time in a scratch copy of the tree, each against the QEMU
#     integration tests (tests/qemu.rs, hostile.rs, bench.rs): a few
#     minutes per bug.
#
#   scripts/mutants.sh                # quick: the Rust mutants in the code
#                                     #   touched since HEAD~1 (the last
#                                     #   commit and uncommitted work)
#   scripts/mutants.sh --base REV     #   ... touched since REV instead
#   scripts/mutants.sh --long         # every Rust mutant, then every planted
#                                     #   bug (hours: run it in the background)
#   scripts/mutants.sh --long --iterate  # again, only the Rust mutants the
#                                     #   last --long run did not catch (its
#                                     #   output kept in long-before/)
#   scripts/mutants.sh --asm          # only the planted bugs
#   scripts/mutants.sh --no-asm       # with --long: only the Rust mutants
#   scripts/mutants.sh --bug ID       # with --asm: only this planted bug (repeatable)
#   scripts/mutants.sh --crate NAME   # only this crate's mutants (bulkhead,
#                                     #   bulkhead-abi, bulkhead-config; repeatable)
#   scripts/mutants.sh --rev REV      # test the committed tree REV instead
#                                     #   of the working tree
#   scripts/mutants.sh --jobs N       # mutants built and tested at once
#                                     #   (default: CPUs, at most 4)
#
# The tests each mutant runs, never a QEMU (one boot would make a mutant
# take minutes): bulkhead: its unit tests and tests/fuzz.rs (the short,
# fixed-seed run of `cargo test`); bulkhead-abi: its tests (with the C
# header test) and bulkhead's; bulkhead-config: its own. The QEMU tests,
# tests/map.rs and tests/setup.rs are left out. Time limit for one
# mutant's tests: bulkhead and bulkhead-abi 90 s, bulkhead-config 60 s.
# A planted bug is killed when a QEMU test fails that passed without it,
# and fails again when run alone (some depend on timing on a loaded host).
#
# Everything runs on a snapshot of the tree taken at the start, so the
# checkout may change meanwhile; it is never modified. Output:
# target/mutants/{quick,long}/<crate>/mutants.out/ (cargo-mutants' own:
# missed.txt, caught.txt, timeout.txt, unviable.txt, outcomes.json, logs),
# target/mutants/{quick,long}/survivors.txt (every missed mutant) and
# score.txt; target/mutants/asm/asm.txt and a test log per planted bug.
# Prints caught / missed / unviable / timeout per crate and the score,
# (caught + timeout) / (caught + missed + timeout). Exits 0 when nothing
# survived, 2 when something did, 1 on an error (such as a baseline whose
# tests fail). Installs cargo-mutants and what scripts/setup.sh installs
# when they are missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() { sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; }

cargo_mutants_version=27.1.0 # installed when cargo-mutants is missing
long=0
iterate=0
asm=0
rust=1
base=HEAD~1
rev=""
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 4 ] && jobs=4
crates=()
only_bugs=()
need() { [ $# -ge 2 ] || { echo "mutants.sh: $1 needs a value (see --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --long) long=1; asm=1 ;;
        --asm) asm=1; rust=0 ;;
        --no-asm) asm=0 ;;
        --iterate) iterate=1 ;;
        --base) need "$@"; base=$2; shift ;;
        --rev) need "$@"; rev=$2; shift ;;
        --jobs) need "$@"; jobs=$2; shift ;;
        --crate) need "$@"; crates+=("$2"); shift ;;
        --bug) need "$@"; only_bugs+=("$2"); shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "mutants.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$long" = 1 ] && [ "$rust" = 0 ]; then
    rust=1 # --long --asm: both
fi
[ ${#crates[@]} -gt 0 ] || crates=(bulkhead bulkhead-abi bulkhead-config)
for crate in "${crates[@]}"; do
    case "$crate" in
        bulkhead|bulkhead-abi|bulkhead-config) ;;
        *) echo "mutants.sh: --crate $crate: not one of bulkhead, bulkhead-abi, bulkhead-config" >&2; exit 2 ;;
    esac
done

start=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - start ))s)" >&2; }

# Each crate's tests (cargo test arguments), packages tested and time limit.
test_args() {
    case "$1" in
        bulkhead) echo "--lib --test fuzz" ;;
        bulkhead-abi) echo "--lib --test c_header --test fuzz" ;;
        bulkhead-config) echo "" ;;
    esac
}
test_packages() {
    case "$1" in
        bulkhead-abi) echo "bulkhead-abi bulkhead" ;;
        *) echo "$1" ;;
    esac
}
test_timeout() {
    case "$1" in
        bulkhead-config) echo 60 ;;
        *) echo 90 ;;
    esac
}

# What the tests need, and cargo-mutants. The scratch builds are their own:
# nothing from the caller's environment may point them elsewhere.
step "setup"
scripts/setup.sh
if ! cargo mutants --version >/dev/null 2>&1; then
    step "installing cargo-mutants $cargo_mutants_version"
    cargo install cargo-mutants --locked --version "$cargo_mutants_version"
fi
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET BULKHEAD_CONFIG BULKHEAD_GUEST_DIR \
    BULKHEAD_FUZZ_SEED BULKHEAD_FUZZ_EXECS BULKHEAD_FUZZ_REPLAY BULKHEAD_FUZZ_STRICT

# The snapshot: the working tree (or --rev), without target/ and .git.
work=$(mktemp -d "${TMPDIR:-/tmp}/bulkhead-mutants.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/tree
mkdir -p "$tree"
if [ -n "$rev" ]; then
    step "snapshot of $rev"
    git rev-parse --verify -q "$rev^{commit}" >/dev/null || { echo "mutants.sh: --rev $rev: no such commit" >&2; exit 2; }
    git archive "$rev" | tar -C "$tree" -xf -
else
    step "snapshot of the working tree"
    tar -C "$root" --exclude=./target --exclude=./.git -cf - . | tar -C "$tree" -xf -
fi
config=$root/.cargo/mutants.toml # the checkout's, even for an older --rev

status=0
survived() { [ "$status" -ne 0 ] || status=2; }
failed() { status=1; }

count() { if [ -f "$1" ]; then grep -c . "$1" || true; else echo 0; fi; }

# ---- Rust mutants -------------------------------------------------------------
run_rust() {
    local mode out diff crate n args a ca packages p tp pp t code baseline
    if [ "$long" = 1 ]; then mode=long; else mode=quick; fi
    out=$root/target/mutants/$mode
    mkdir -p "$out"
    diff=()
    if [ "$iterate" = 1 ]; then
        [ "$long" = 1 ] || { echo "mutants.sh: --iterate goes with --long" >&2; exit 2; }
        # cargo-mutants skips what the output directory's last run caught.
        rm -rf "$root/target/mutants/long-before"
        cp -a "$out" "$root/target/mutants/long-before"
        diff=(--iterate)
        step "the Rust mutants the last --long run did not catch"
    elif [ "$long" = 0 ]; then
        git rev-parse --verify -q "$base^{commit}" >/dev/null ||
            { echo "mutants.sh: --base $base: no such commit (try --long)" >&2; exit 2; }
        if [ -n "$rev" ]; then
            git diff --no-color --no-ext-diff "$base" "$rev" >"$work/changes.diff"
        else
            git diff --no-color --no-ext-diff "$base" >"$work/changes.diff"
        fi
        diff=(--in-diff "$work/changes.diff")
        step "Rust mutants in the code touched since $base"
    else
        step "every Rust mutant"
    fi
    : >"$out/survivors.txt"
    printf '%-16s %7s %7s %7s %9s %8s %7s\n' crate mutants caught missed unviable timeout score \
        >"$out/score.txt"
    local sums=(0 0 0 0 0)
    for crate in "${crates[@]}"; do
        n=$(cargo mutants --dir "$tree" --config "$config" -p "$crate" "${diff[@]}" --list 2>/dev/null |
            grep -c . || true)
        if [ "$n" = 0 ]; then
            step "$crate: no mutants"
            continue
        fi
        # The test selection goes to every cargo command (--cargo-arg), so
        # that building a mutant builds only the tests that will run.
        read -r -a args <<<"$(test_args "$crate")"
        ca=()
        for a in "${args[@]}"; do ca+=("--cargo-arg=$a"); done
        read -r -a packages <<<"$(test_packages "$crate")"
        tp=()
        pp=()
        for p in "${packages[@]}"; do tp+=(--test-package "$p"); pp+=(-p "$p"); done
        t=$(test_timeout "$crate")
        step "$crate: $n mutants, $jobs at a time, tests limited to ${t}s: cargo test ${pp[*]} ${args[*]}"
        # cargo-mutants' baseline tests only the mutated package: when more
        # are tested, the baseline is this script's.
        baseline=()
        if [ "${packages[*]}" != "$crate" ]; then
            if ! (cd "$tree" && cargo test "${pp[@]}" "${args[@]}") >"$work/$crate-baseline.log" 2>&1; then
                mkdir -p "$out/$crate"
                cp "$work/$crate-baseline.log" "$out/$crate/baseline.log"
                echo "mutants.sh: $crate: its tests fail without any mutant (see ${out#"$root"/}/$crate/baseline.log)" >&2
                failed
                continue
            fi
            baseline=(--baseline skip)
        fi
        code=0
        cargo mutants --dir "$tree" --config "$config" -p "$crate" "${tp[@]}" "${diff[@]}" \
            "${baseline[@]}" "${ca[@]}" --jobs "$jobs" --timeout "$t" --build-timeout 600 \
            --colors never --output "$out/$crate" || code=$?
        # 0: all caught; 2: missed; 3: timeouts; 4: the unmutated tree fails.
        case "$code" in
            0|2|3) ;;
            4) echo "mutants.sh: $crate: its tests fail without any mutant (see $out/$crate/mutants.out/log)" >&2
               failed; continue ;;
            *) echo "mutants.sh: $crate: cargo mutants failed ($code)" >&2; failed; continue ;;
        esac
        local mo=$out/$crate/mutants.out c m u to sc
        c=$(count "$mo/caught.txt"); m=$(count "$mo/missed.txt")
        u=$(count "$mo/unviable.txt"); to=$(count "$mo/timeout.txt")
        sc=$(awk -v c="$c" -v m="$m" -v t="$to" 'BEGIN { d = c + m + t; if (d) printf "%.1f%%", 100 * (c + t) / d; else print "-" }')
        printf '%-16s %7s %7s %7s %9s %8s %7s\n' "$crate" "$((c + m + u + to))" "$c" "$m" "$u" "$to" "$sc" \
            >>"$out/score.txt"
        sums=($((sums[0] + c + m + u + to)) $((sums[1] + c)) $((sums[2] + m)) $((sums[3] + u)) $((sums[4] + to)))
        if [ "$m" -gt 0 ]; then
            { echo "# $crate: $m missed"; cat "$mo/missed.txt"; echo; } >>"$out/survivors.txt"
            survived
        fi
    done
    sc=$(awk -v c="${sums[1]}" -v m="${sums[2]}" -v t="${sums[4]}" 'BEGIN { d = c + m + t; if (d) printf "%.1f%%", 100 * (c + t) / d; else print "-" }')
    printf '%-16s %7s %7s %7s %9s %8s %7s\n' total "${sums[@]}" "$sc" >>"$out/score.txt"
    step "Rust mutants: score (caught + timeout) / (caught + missed + timeout)"
    cat "$out/score.txt"
    if [ -s "$out/survivors.txt" ]; then
        echo "missed mutants (survivors): ${out#"$root"/}/survivors.txt"
        cat "$out/survivors.txt"
    fi
}

# ---- Planted assembly bugs ------------------------------------------------------
# Some QEMU tests depend on timing and may fail on a loaded host, so a
# failure counts only when the test fails again run alone (one at a time)
# on the same tree: a planted bug is killed by the tests that fail twice.
# Tests that fail twice without any bug (the baseline) count for nothing.

# Runs `cargo test --test qemu [-- ARGS]` in $tree, its log in $1; the
# failing tests, one a line, sorted, in $2. Returns cargo's status.
qemu_tests() {
    local log=$1 failed=$2 code=0 t targets=()
    shift 2
    for t in qemu hostile bench; do
        [ ! -f "$tree/tests/$t.rs" ] || targets+=(--test "$t")
    done
    (cd "$tree" && cargo test "${targets[@]}" -- "$@") >"$log" 2>&1 || code=$?
    sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$log" | sort >"$failed"
    return "$code"
}

# Reruns the tests listed in $2 alone; those that fail again go to $3.
qemu_confirm() {
    local -a names
    : >"$3"
    [ -s "$2" ] || return 0
    mapfile -t names <"$2"
    qemu_tests "$1" "$3" --exact --test-threads 1 "${names[@]}" || true
}

# Applies $script to the pristine $file in $tree; the number of lines changed.
plant() {
    local saved=$work/pristine/${file//\//_}
    [ -f "$saved" ] || cp "$tree/$file" "$saved"
    sed -e "$script" "$saved" >"$tree/$file"
    diff "$saved" "$tree/$file" | grep -c '^[<>]' || true
}
unplant() { cp "$work/pristine/${file//\//_}" "$tree/$file"; }

run_asm() {
    local out=$root/target/mutants/asm bugs=$root/scripts/planted-bugs.txt
    local line id file script what changed code n killed=0 total=0 result
    rm -rf "$out"
    mkdir -p "$out" "$work/pristine"
    step "planted bugs: the QEMU tests without any (baseline)"
    code=0
    qemu_tests "$out/baseline.log" "$work/baseline.1" || code=$?
    if [ "$code" -ne 0 ] && [ ! -s "$work/baseline.1" ]; then
        echo "mutants.sh: the QEMU tests do not build or run (see ${out#"$root"/}/baseline.log)" >&2
        failed
        return
    fi
    qemu_confirm "$out/baseline.rerun.log" "$work/baseline.1" "$work/baseline.failed"
    if [ -s "$work/baseline.1" ]; then
        echo "mutants.sh: without any bug, failed once: $(paste -sd ' ' "$work/baseline.1");" \
            "failed again alone (these count for nothing): $(paste -sd ' ' "$work/baseline.failed")" >&2
    fi
    {
        echo "# planted bugs against the QEMU tests (scripts/planted-bugs.txt)"
        echo "# baseline (no bug): failed once: $(paste -sd ' ' "$work/baseline.1");" \
            "failed again alone, not counted: $(paste -sd ' ' "$work/baseline.failed")"
    } >"$out/asm.txt"
    while IFS= read -r line; do
        case "$line" in ''|'#'*) continue ;; esac
        id=$(awk -F ' [|] ' '{ print $1 }' <<<"$line")
        file=$(awk -F ' [|] ' '{ print $2 }' <<<"$line")
        script=$(awk -F ' [|] ' '{ print $3 }' <<<"$line")
        what=$(awk -F ' [|] ' '{ print $4 }' <<<"$line")
        if [ ${#only_bugs[@]} -gt 0 ] && ! printf '%s\n' "${only_bugs[@]}" | grep -qxF "$id"; then
            continue
        fi
        total=$((total + 1))
        changed=$(plant)
        if [ "$changed" -lt 1 ] || [ "$changed" -gt 2 ]; then
            step "$id: STALE (its sed script changes $changed lines of $file, not one)"
            printf '%-22s %-9s %s\n' "$id" stale "$what" >>"$out/asm.txt"
            unplant
            failed
            continue
        fi
        diff "$work/pristine/${file//\//_}" "$tree/$file" >"$out/$id.diff" || true
        step "$id: $what"
        if ! (cd "$tree" && scripts/build.sh) >"$out/$id.log" 2>&1; then
            result="unviable  (the image does not build)"
            failed
        else
            code=0
            qemu_tests "$out/$id.log" "$work/$id.1" || code=$?
            comm -13 "$work/baseline.failed" "$work/$id.1" >"$work/$id.2"
            qemu_confirm "$out/$id.rerun.log" "$work/$id.2" "$work/$id.failed"
            n=$(grep -c . "$work/$id.failed" || true)
            if [ "$n" -gt 0 ]; then
                killed=$((killed + 1))
                result="killed    by $(paste -sd ' ' "$work/$id.failed")"
            elif [ -s "$work/$id.2" ]; then
                result="SURVIVED  (failed once, passed alone: $(paste -sd ' ' "$work/$id.2"))"
                survived
            elif [ "$code" -ne 0 ] && [ ! -s "$work/$id.1" ]; then
                result="error     (the tests did not run: ${out#"$root"/}/$id.log)"
                failed
            else
                result="SURVIVED  (every QEMU test passed)"
                survived
            fi
        fi
        echo "   $result" >&2
        printf '%-22s %s\n    %s\n' "$id" "$result" "$what" >>"$out/asm.txt"
        unplant
    done <"$bugs"
    echo "# killed $killed of $total" >>"$out/asm.txt"
    step "planted bugs: killed $killed of $total"
    cat "$out/asm.txt"
}

[ "$rust" = 1 ] && run_rust
[ "$asm" = 1 ] && run_asm
step "done"
exit "$status"
