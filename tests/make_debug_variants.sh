#!/usr/bin/env bash
# Makes the separate-debug-info variants of a -g binary for
# symbolizer_dwarf_test (see tests/symbolizer_dwarf.cmake):
#   OUT/NAME.debug            objcopy --only-keep-debug (the test files it
#                             under a temporary DIR/.build-id/xx/yyyy.debug)
#   OUT/buildid/NAME          stripped of everything, build id note kept
#   OUT/debuglink/NAME        stripped, with .gnu_debuglink naming NAME.debug,
#                             which sits beside it
#   OUT/mini/NAME             stripped, with MiniDebugInfo: an xz-compressed
#                             .symtab of the functions not in .dynsym in
#                             .gnu_debugdata, as Fedora's find-debuginfo makes it
# Usage: make_debug_variants.sh BINARY OUT
set -euo pipefail

bin=$(realpath "$1")
out=$(realpath -m "$2")
name=$(basename "$bin")
objcopy=${OBJCOPY:-objcopy}
nm=${NM:-nm}

mkdir -p "$out/buildid" "$out/debuglink" "$out/mini"
tmp=$(mktemp -d "$out/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$objcopy" --only-keep-debug "$bin" "$out/$name.debug"
"$objcopy" --strip-all "$bin" "$out/buildid/$name"

cp "$out/$name.debug" "$out/debuglink/$name.debug"
(cd "$out/debuglink" && "$objcopy" --strip-all --add-gnu-debuglink="$name.debug" "$bin" "$name")

# MiniDebugInfo: function symbols that .dynsym does not already have.
"$nm" -D "$bin" --format=posix --defined-only | awk '{ print $1 }' | sort >"$tmp/dynsyms"
"$nm" "$bin" --format=posix --defined-only |
	awk '{ if ($2 == "T" || $2 == "t" || $2 == "W" || $2 == "w") print $1 }' | sort >"$tmp/funcsyms"
comm -13 "$tmp/dynsyms" "$tmp/funcsyms" >"$tmp/keep_symbols"
test -s "$tmp/keep_symbols" || { echo "make_debug_variants: no function symbols in $bin" >&2; exit 1; }
"$objcopy" --only-keep-debug "$bin" "$tmp/mini_debuginfo"
"$objcopy" -S --remove-section .gdb_index --remove-section .comment \
	--keep-symbols="$tmp/keep_symbols" "$tmp/mini_debuginfo"
xz --force --keep "$tmp/mini_debuginfo"
"$objcopy" --strip-all --remove-section .gnu_debuglink \
	--add-section .gnu_debugdata="$tmp/mini_debuginfo.xz" "$bin" "$out/mini/$name"
