#!/bin/bash
# cli.sh FMTOOL MAKE_ARENA -- the command line: help, usage errors, exit codes.
source "$(dirname "$0")/lib.sh"

run "$fmtool"
expect_rc 2
expect_err '^fmtool: no command given'
expect_err '^usage: fmtool COMMAND'

for h in --help -h help; do
    run "$fmtool" $h
    expect_rc 0
    for c in info stats check map snapshot; do
        expect_out "^  $c "
    done
done

for v in --version -V; do
    run "$fmtool" $v
    expect_rc 0
    expect_out '^fmtool \(fmalloc [0-9]+\.[0-9]+\.[0-9]+, file format 2\)$'
done

for c in info stats check map snapshot; do
    run "$fmtool" $c --help
    expect_rc 0
    expect_out "^usage: fmtool $c "
    expect_out '^Exit: 0 '
    run "$fmtool" help $c
    expect_rc 0
    expect_out "^usage: fmtool $c "
    # --help wins over everything else on the line
    run "$fmtool" $c /nonexistent -h
    expect_rc 0
done
for c in info stats check; do
    run "$fmtool" $c --help
    expect_out '--json'
done

run "$fmtool" frobnicate x.fm
expect_rc 2
expect_err "^fmtool: unknown command 'frobnicate'"
expect_err '^usage: fmtool COMMAND'

run "$fmtool" help frobnicate
expect_rc 2
expect_err "unknown command 'frobnicate'"

run "$fmtool" info
expect_rc 2
expect_err '^fmtool: info: missing FILE'
expect_err '^usage: fmtool info \[--json\] FILE'

run "$fmtool" snapshot a.fm
expect_rc 2
expect_err 'missing COPY'

run "$fmtool" info --bogus a.fm
expect_rc 2
expect_err "unknown option '--bogus'"

run "$fmtool" map --json a.fm
expect_rc 2
expect_err "unknown option '--json'"

run "$fmtool" info a.fm b.fm
expect_rc 2
expect_err "unexpected argument 'b.fm'"

run "$fmtool" map a.fm -o
expect_rc 2
expect_err '-o needs a file name'

# A missing file: one error line, exit 2, for every command.
for c in info stats check map; do
    run "$fmtool" $c "$dir/missing.fm"
    expect_rc 2
    expect_one_error_line
    expect_err 'No such file'
done
run "$fmtool" snapshot "$dir/missing.fm" "$dir/copy.fm"
expect_rc 2
expect_one_error_line
[ -e "$dir/copy.fm" ] && fail "snapshot of a missing file left a copy"

# --json failures are still one JSON object on stdout.
for c in info stats check; do
    run "$fmtool" $c --json "$dir/missing.fm"
    expect_rc 2
    expect_json
    expect_out '"name": "ENOENT"'
    expect_out '"status": "error"'
done

# "--" ends the options: a file named like an option.
"$mk" fresh "$dir/-x.fm" || fail "make_arena fresh"
(cd "$dir" && "$fmtool" info -- -x.fm >/dev/null) || fail "info -- -x.fm"

finish
