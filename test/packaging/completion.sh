#!/usr/bin/env bash
# completion.sh COMPLETION_FILE -- tools/completion/fmtool completes the
# commands, each command's options, arena files (*.fm), SVG names after -o,
# and command names after `help`.
source "$(dirname "$0")/lib.sh"
source "$1"
export LC_ALL=C
cd "$work" && touch a.fm b.fm notes.txt pic.svg && mkdir sub

# complete WORD... : COMPREPLY for the line "WORD..." with the cursor at
# the end of the last word, one per line, sorted.
complete_line() {
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _fmtool
    printf '%s\n' "${COMPREPLY[@]}" | sort | paste -sd' '
}
expect() { # expect WANT WORD...
    local want=$1 got
    shift
    got=$(complete_line "$@")
    [ "$got" = "$want" ] || { echo "'$*': got '$got', want '$want'"; return 1; }
}

check commands expect "--help --version -V -h check help info map snapshot stats" fmtool ""
check command-prefix expect "snapshot stats" fmtool s
check version-flags expect "--help --version" fmtool --
check check-options expect "-- --help --json" fmtool check --
check map-options expect "--output" fmtool map --o
check snapshot-options expect "-f" fmtool snapshot -f
check arena-files expect "a.fm b.fm sub" fmtool check ""
check arena-prefix expect "a.fm" fmtool info a
check any-file-when-no-arena expect "notes.txt" fmtool check no
check svg-after-o expect "pic.svg sub" fmtool map a.fm -o ""
check after-double-dash expect "a.fm b.fm sub" fmtool check -- ""
check help-commands expect "check" fmtool help ch
check registered bash -c "source '$1' && complete -p fmtool | grep -q _fmtool"
finish
