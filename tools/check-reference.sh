#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every function the library exports (api/pebble.sym, and the dynamic
# symbols of the built library) has its reference entry in api/pebble.h:
# a /** ... */ block right before its declaration, with a @brief, a
# @param for each parameter and a @return unless it returns void.  Where
# configure found doxygen, doxygen must also read the header without a
# warning (an undocumented member is one) and its XML must hold an entry
# with a brief description for each function.
top_srcdir=${top_srcdir:-$(dirname "$0")/..}
top_builddir=${top_builddir:-.}
header="$top_srcdir/api/pebble.h"
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The exports: the list, and what the built library really exports.
sort -u "$top_srcdir/api/pebble.sym" > "$tmp/exports"
lib="$top_builddir/.libs/libpebble.so"
if [ -f "$lib" ] && command -v nm > /dev/null; then
  nm -D --defined-only "$lib" | awk '$2 == "T" && $3 ~ /^pebble_/ {print $3}' |
    cat - "$tmp/exports" | sort -u > "$tmp/all" && mv "$tmp/all" "$tmp/exports"
fi

# The header, read as text: for each exported declaration, the comment
# block that ends on the line before it.
awk -v exports="$tmp/exports" '
  BEGIN { while ((getline fn < exports) > 0) want[fn] = 1 }
  # A comment block: "doc" keeps the last one, "doc_end" its last line.
  !incomment && /\/\*/ && !/\*\// { incomment = 1; block = $0 "\n"; next }
  incomment { block = block $0 "\n"; if ($0 ~ /\*\//) { incomment = 0; doc = block; doc_end = NR }; next }
  /\/\*.*\*\// && !/PEBBLE_API/ { doc = $0 "\n"; doc_end = NR; next }
  # A declaration: gather it up to its semicolon.
  /^PEBBLE_API / { decl = $0; start = NR; indecl = 1 }
  indecl && NR > start { decl = decl " " $0 }
  indecl && /;/ {
    indecl = 0
    if (!match(decl, /[A-Za-z_0-9]+\(/)) next
    fn = substr(decl, RSTART, RLENGTH - 1)
    seen[fn] = 1
    if (!(fn in want)) next
    if (doc_end != start - 1 || doc !~ /^[ \t]*\/\*\*/) {
      printf "%s: no /** ... */ block right before its declaration (line %d)\n", fn, start; bad++; next
    }
    if (doc !~ /@brief/) { printf "%s: its comment has no @brief\n", fn; bad++ }
    # The parameters: the text between the name and the closing ")".
    rest = substr(decl, RSTART + RLENGTH)
    depth = 1; params = ""
    for (i = 1; i <= length(rest) && depth > 0; i++) {
      c = substr(rest, i, 1)
      if (c == "(") depth++
      if (c == ")") depth--
      if (depth > 0) params = params (c == "," && depth == 1 ? "\001" : c)
    }
    n = split(params, p, "\001")
    for (i = 1; i <= n; i++) {
      q = p[i]; gsub(/^[ \t]+|[ \t]+$/, "", q)
      if (q == "void" || q == "") continue
      if (q == "...") name = "\\.\\.\\."
      else if (match(q, /\(\*[ \t]*[A-Za-z_0-9]+\)/)) name = substr(q, RSTART + 2, RLENGTH - 3)
      else { match(q, /[A-Za-z_0-9]+$/); name = substr(q, RSTART, RLENGTH) }
      if (doc !~ ("@param(\\[[a-z,]+\\])?[ \t]+" name "([ \t\n]|$)")) {
        printf "%s: parameter %s has no @param\n", fn, name; bad++
      }
    }
    if (decl !~ /^PEBBLE_API void / && doc !~ /@return/) {
      printf "%s: its comment has no @return\n", fn; bad++
    }
  }
  END {
    for (fn in want) if (!(fn in seen)) { printf "%s: exported but not declared in pebble.h\n", fn; bad++ }
    exit bad > 0
  }' "$header" || fail=1

# The status codes come from an X-macro, so their entries are @var blocks
# after the enum: one for each code of PEBBLE_STATUS_MAP.
for code in $(sed -n 's/^ *X(\([A-Z]*\), .*/\1/p' "$header"); do
  if ! grep -q "^/\*\* @var PEBBLE_$code\$" "$header"; then
    echo "PEBBLE_$code: no /** @var PEBBLE_$code block after enum pebble_status"; fail=1
  fi
done

# doxygen, where configure found it: the doxygen of this build's Makefile.
doxygen=${DOXYGEN-}
if [ -z "$doxygen" ] && [ -f "$top_builddir/Makefile" ]; then
  doxygen=$(sed -n 's/^DOXYGEN = //p' "$top_builddir/Makefile")
fi
if [ -n "$doxygen" ] && [ -f "$top_builddir/docs/Doxyfile" ]; then
  { cat "$top_builddir/docs/Doxyfile"
    echo "OUTPUT_DIRECTORY = $tmp/ref"
    echo "WARN_LOGFILE = $tmp/warnings.log"
    } > "$tmp/Doxyfile"
  mkdir "$tmp/ref"
  if ! (cd "$top_builddir" && $doxygen "$tmp/Doxyfile") > "$tmp/doxygen.out" 2>&1; then
    cat "$tmp/doxygen.out"; echo "doxygen failed"; fail=1
  fi
  if [ -s "$tmp/warnings.log" ]; then
    echo "doxygen warns (every public declaration needs its entry):"
    cat "$tmp/warnings.log"; fail=1
  fi
  # Each function's memberdef, and whether its brief description has text.
  cat "$tmp"/ref/xml/group__*.xml 2>/dev/null | awk '
    /<memberdef kind="function"/ { inf = 1; name = ""; brief = 0; inbrief = 0 }
    inf && /<name>/ && name == "" { name = $0; sub(/.*<name>/, "", name); sub(/<\/name>.*/, "", name) }
    inf && /<briefdescription>/ { inbrief = 1 }
    inf && inbrief && /<para>/ { brief = 1 }
    inf && /<\/briefdescription>/ { inbrief = 0 }
    inf && /<\/memberdef>/ { if (brief) print name; inf = 0 }' | sort -u > "$tmp/documented"
  missing=$(comm -23 "$tmp/exports" "$tmp/documented")
  if [ -n "$missing" ]; then
    echo "no entry with a brief description in doxygen's output (in a group):"
    echo "$missing" | sed 's/^/  /'; fail=1
  fi
  doxygen_said="; doxygen ($($doxygen --version)) has an entry for each, without a warning"
else
  doxygen_said="; doxygen not found by configure: its output is not checked"
fi
[ $fail -eq 0 ] && echo "every exported function ($(wc -l < "$tmp/exports")) has its reference entry in api/pebble.h$doxygen_said"
exit $fail
