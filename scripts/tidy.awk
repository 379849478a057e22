# tidy.awk — the purity check of one C file (scripts/tidy.sh runs it on
# every file in src/core and src/common). POSIX awk only: Debian's default
# awk is mawk, which has no \< \> \b \s and no gensub.
#
# It reports, one "file:line: ..." line each, and exits 1 if any:
#  - a call of a banned function (clocks, randomness, printing, environment,
#    threads, sockets, files): `name(` not preceded by `.` or `->` (a
#    member such as vfs->write is fine) anywhere in the file;
#  - an allocation (malloc, calloc, realloc, free, strdup, ...) in a
#    function that is not init-only.
#
# A function is init-only if its name ends in _init or _deinit, or if it is
# static and every use of its name in the file (a call, or its address
# taken) is inside init-only functions other than itself. So a static
# helper of replica_init() may allocate, and stops being allowed to the day
# someone calls it from replica_step() or stores it in a table.
#
# Comments and string literals are ignored. An exception is written as a
# comment containing "tidy: allow" and the reason: on a line of code it
# exempts that line; alone on a line (or ending a block comment) it exempts
# the next line of code.
function strip(s, out, n, i, c, j, q) {
    out = ""
    n = length(s)
    i = 1
    while (i <= n) {
        if (in_comment) {
            j = index(substr(s, i), "*/")
            if (j == 0)
                return out
            i += j + 1
            in_comment = 0
            out = out " "
            continue
        }
        c = substr(s, i, 1)
        if (substr(s, i, 2) == "/*") {
            in_comment = 1
            i += 2
            continue
        }
        if (substr(s, i, 2) == "//")
            return out
        if (c == "\"" || c == "'") {
            q = c
            i++
            while (i <= n && substr(s, i, 1) != q) {
                if (substr(s, i, 1) == "\\")
                    i++
                i++
            }
            i++
            out = out q q
            continue
        }
        out = out c
        i++
    }
    return out
}

# Every `name(` in code whose name matches the anchored pattern `names`,
# not a member access; appends them to found[] and returns their count.
function calls(code, names, found, k, rest, m, word) {
    k = 0
    rest = " " code
    while (match(rest, /[^A-Za-z0-9_.>][A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
        word = substr(rest, RSTART + 1, RLENGTH - 2)
        sub(/[ \t]+$/, "", word)
        if (word ~ names)
            found[++k] = word
        rest = substr(rest, RSTART + RLENGTH - 1)
    }
    return k
}

function note_uses(code, who, n, w, i) {
    gsub(/[^A-Za-z0-9_]+/, " ", code)
    n = split(code, w, " ")
    for (i = 1; i <= n; i++) {
        if (w[i] !~ /^[A-Za-z_]/ || (w[i], who) in used)
            continue
        used[w[i], who] = 1
        users[w[i]] = users[w[i]] SUBSEP who
    }
}

BEGIN {
    banned = "^(time|clock_gettime|clock|gettimeofday|rand|random|srand|" \
             "srandom|getrandom|printf|fprintf|vfprintf|puts|fputs|" \
             "perror|getenv|setenv|pthread_[a-z_]+|socket|connect|" \
             "open|fopen|close|read|write|pread|pwrite|fsync|fdatasync|" \
             "sleep|usleep|nanosleep)$"
    allocs = "^(malloc|calloc|realloc|reallocarray|free|strdup|strndup|" \
             "aligned_alloc|posix_memalign)$"
    FILE_SCOPE = "<file scope>"
    depth = 0
    fn = ""
    candidate = ""
    pending_allow = 0
    bad = 0
    n_alloc = 0
}

{
    code = strip($0)
    has_code = code ~ /[^ \t]/
    marker = $0 ~ /tidy: allow/
    allowed = 0
    if (has_code) {
        allowed = pending_allow || marker
        pending_allow = 0
    } else if (marker) {
        pending_allow = 1
    }
    if (!has_code)
        next

    # A definition starts at column 0 at file scope: `type name(`.
    if (depth == 0 && code ~ /^[A-Za-z_][A-Za-z0-9_ \t*]*\(/ &&
        code !~ /^(typedef|extern)[ \t]/) {
        pre = substr(code, 1, index(code, "(") - 1)
        gsub(/[^A-Za-z0-9_]+/, " ", pre)
        k = split(pre, w, " ")
        candidate = w[k]
        candidate_static = code ~ /^static[ \t]/
    }
    if (depth == 0 && code ~ /=/)
        candidate = "" # an initializer, not a signature
    who = fn != "" ? fn : (candidate != "" ? candidate : FILE_SCOPE)

    k = calls(code, banned, found)
    for (i = 1; i <= k && !allowed; i++) {
        printf "%s:%d: %s() in the pure core: %s\n", FILENAME, FNR,
               found[i], $0
        bad = 1
    }
    k = calls(code, allocs, found)
    for (i = 1; i <= k && !allowed; i++) {
        n_alloc++
        alloc_fn[n_alloc] = who
        alloc_what[n_alloc] = found[i]
        alloc_where[n_alloc] = FILENAME ":" FNR
        alloc_text[n_alloc] = $0
    }
    note_uses(code, who) # on its own definition, a name uses itself

    # Braces: a definition's body is the block that opens at file scope
    # after it; a `;` at file scope first means it was a prototype.
    opens = gsub(/\{/, "{", code)
    closes = gsub(/\}/, "}", code)
    if (depth == 0 && opens > 0 && candidate != "") {
        fn = candidate
        defined[fn] = 1
        is_static[fn] = candidate_static
        candidate = ""
    } else if (depth == 0 && code ~ /;/) {
        candidate = ""
    }
    depth += opens - closes
    if (depth <= 0) {
        depth = 0
        fn = ""
    }
}

END {
    for (f in defined)
        init_only[f] = f ~ /_(init|deinit)$/
    changed = 1
    while (changed) {
        changed = 0
        for (f in defined) {
            if (init_only[f] || !is_static[f])
                continue
            n = split(users[f], u, SUBSEP)
            ok = 0
            for (i = 1; i <= n; i++) {
                if (u[i] == "" || u[i] == f)
                    continue
                if (!init_only[u[i]]) {
                    ok = 0
                    break
                }
                ok = 1
            }
            if (ok) {
                init_only[f] = 1
                changed = 1
            }
        }
    }
    for (a = 1; a <= n_alloc; a++) {
        f = alloc_fn[a]
        if (f in init_only && init_only[f])
            continue
        why = "in " f "()"
        if (f == FILE_SCOPE)
            why = "at file scope"
        else if (is_static[f]) {
            n = split(users[f], u, SUBSEP)
            for (i = 1; i <= n; i++)
                if (u[i] != "" && u[i] != f && !init_only[u[i]])
                    break
            if (i <= n)
                why = why ", which " u[i] "() uses"
            else
                why = why ", which nothing uses"
        }
        printf "%s: %s() outside *_init %s: %s\n", alloc_where[a],
               alloc_what[a], why, alloc_text[a]
        bad = 1
    }
    exit bad
}
