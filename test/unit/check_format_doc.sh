#!/usr/bin/env bash
# check_format_doc.sh -- docs/format.md must say what the code says.
#
#   check_format_doc.sh FORMAT_DOC_PROGRAM DOCS_FORMAT_MD
#
# FORMAT_DOC_PROGRAM is test/unit/format_doc.c built against lib/: it prints
# one line per fact of the on-disk layout ("TABLE KEY VALUE...", see the top
# of format_doc.c).  The doc marks each table this test reads with an HTML
# comment on a line of its own, followed (after blank lines at most) by a
# Markdown table whose first row is its header:
#
#   <!-- doc-test: superblock -->  | offset | size | type | name | meaning |
#   <!-- doc-test: log_entry -->   | offset | size | type | name | meaning |
#   <!-- doc-test: journal -->     | offset | size | type | name | meaning |
#   <!-- doc-test: jrecord -->     | offset | size | type | name | meaning |
#   <!-- doc-test: constant -->    | name | value | meaning |
#   <!-- doc-test: chunk -->       | offset | size | field | constant | meaning |
#   <!-- doc-test: treebin -->     | bin | sizes from | sizes below | key shift | ... |
#   <!-- doc-test: tag -->         | chunk offset | salt | size and flags | head word | ... |
#   <!-- doc-test: marker -->      | chunk offset | salt | marker | ... |
#
# A name may carry an array length (`sb_smallbins[32]`), which must match
# too.  Backticks and spaces inside checked cells are ignored; the magic's
# hex bytes compare case-insensitively.  The test fails if any value
# differs, if the code has a fact the doc lacks, if the doc has a row the
# code lacks, or if a row appears twice.  Needs only bash and POSIX awk.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 FORMAT_DOC_PROGRAM DOCS_FORMAT_MD" >&2
    exit 2
fi
prog=$1
doc=$2

if [ ! -r "$doc" ]; then
    echo "check_format_doc: cannot read $doc" >&2
    exit 1
fi

facts=$(mktemp "${TMPDIR:-/tmp}/format_doc.XXXXXX") || exit 1
trap 'rm -f "$facts"' EXIT

if ! "$prog" >"$facts"; then
    echo "check_format_doc: $prog failed (see its messages above)" >&2
    exit 1
fi

awk -v docname="$doc" '
function trim(s) {
    gsub(/`/, "", s)
    gsub(/^[ \t]+|[ \t]+$/, "", s)
    return s
}
function nospace(s) {
    gsub(/[ \t]/, "", s)
    return s
}
function fail(msg) {
    print "check_format_doc: " msg > "/dev/stderr"
    errors++
}
# Record one row of the doc under table/name.
function got_row(name, value) {
    k = table SUBSEP name
    if (k in got)
        fail(docname ":" FNR ": " table " row \"" name "\" appears twice")
    got[k] = value
    got_line[k] = FNR
}

# ---- first file: the facts from the code --------------------------------
FNR == NR {
    if (NF < 3) {
        fail("malformed line from the program: " $0)
        next
    }
    k = $1 SUBSEP $2
    v = $3
    for (i = 4; i <= NF; i++)
        v = v " " $i
    want[k] = v
    order[++nwant] = k
    known[$1] = 1
    next
}

# ---- second file: the doc -------------------------------------------------
/^[ \t]*<!--[ \t]*doc-test:/ {
    s = $0
    sub(/^[ \t]*<!--[ \t]*doc-test:[ \t]*/, "", s)
    sub(/[ \t]*-->.*$/, "", s)
    if (!(s in known))
        fail(docname ":" FNR ": unknown doc-test table \"" s "\"")
    table = s
    seen_table[s]++
    in_table = 0
    header_done = 0
    next
}

table != "" {
    if ($0 ~ /^[ \t]*\|/) {
        in_table = 1
        if (!header_done) { # the header row
            header_done = 1
            next
        }
        n = split($0, c, "|")
        if (c[2] ~ /^[ \t:-]+$/) # the |---|---| separator
            next
        for (i = 2; i <= n; i++)
            c[i] = trim(c[i])
        if (table == "superblock" || table == "log_entry" || table == "journal" ||
            table == "jrecord") {
            name = c[5]
            count = "-"
            if (name ~ /\[[0-9]+\]$/) {
                count = name
                sub(/^.*\[/, "", count)
                sub(/\]$/, "", count)
                sub(/\[[0-9]+\]$/, "", name)
            }
            got_row(name, nospace(c[2]) " " nospace(c[3]) " " count)
        } else if (table == "constant") {
            got_row(c[2], tolower(nospace(c[3])))
        } else if (table == "chunk") {
            got_row(c[5], nospace(c[2]) " " nospace(c[3]))
        } else if (table == "treebin") {
            got_row(nospace(c[2]), nospace(c[3]) " " nospace(c[4]) " " nospace(c[5]))
        } else if (table == "tag") {
            got_row(nospace(c[2]), tolower(nospace(c[3]) " " nospace(c[4]) " " nospace(c[5])))
        } else if (table == "marker") {
            got_row(nospace(c[2]), tolower(nospace(c[3]) " " nospace(c[4])))
        }
        next
    }
    if (in_table || $0 !~ /^[ \t]*$/) {
        if (!in_table)
            fail(docname ":" FNR ": doc-test marker \"" table "\" is not followed by a table")
        table = ""
    }
}

END {
    for (t in known)
        if (seen_table[t] > 1)
            fail(docname ": " seen_table[t] " tables are marked \"" t "\"; mark one")
    checked = 0
    for (i = 1; i <= nwant; i++) {
        k = order[i]
        split(k, p, SUBSEP)
        if (!(k in got)) {
            fail(docname ": " p[1] " \"" p[2] "\" is missing (the code says: " want[k] ")")
            continue
        }
        checked++
        if (got[k] != want[k])
            fail(docname ":" got_line[k] ": " p[1] " \"" p[2] "\": the doc says \"" got[k] \
                 "\", the code says \"" want[k] "\"")
    }
    for (k in got)
        if (!(k in want)) {
            split(k, p, SUBSEP)
            fail(docname ":" got_line[k] ": " p[1] " \"" p[2] "\" is not in the code")
        }
    if (errors) {
        printf "check_format_doc: %d problem(s); the layout is defined in lib/format.h and lib/heap.h\n", errors > "/dev/stderr"
        exit 1
    }
    printf "check_format_doc: %d facts of the format agree with %s\n", checked, docname
}
' "$facts" "$doc"
