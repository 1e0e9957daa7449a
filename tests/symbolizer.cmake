# Symbolizer tests (included by tests/CMakeLists.txt).
#
# Test ELF files built from tests/data/symtest.c: a PIE executable, a non-PIE
# (ET_EXEC) executable, a shared library, and a stripped copy of the PIE.
add_executable(symtest_pie data/symtest.c)
target_compile_options(symtest_pie PRIVATE -fPIE -O1)
target_link_options(symtest_pie PRIVATE -pie)

add_executable(symtest_nopie data/symtest.c)
target_compile_options(symtest_nopie PRIVATE -fno-pie -O1)
target_link_options(symtest_nopie PRIVATE -no-pie)

add_library(symtest SHARED data/symtest.c)
target_compile_definitions(symtest PRIVATE SYMTEST_LIB)
target_compile_options(symtest PRIVATE -O1)

set(SYMTEST_STRIPPED ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/symtest_pie.stripped)
add_custom_command(OUTPUT ${SYMTEST_STRIPPED}
	COMMAND ${CMAKE_OBJCOPY} --strip-all $<TARGET_FILE:symtest_pie> ${SYMTEST_STRIPPED}
	DEPENDS symtest_pie
	COMMENT "Stripping symtest_pie")
add_custom_target(symtest_stripped DEPENDS ${SYMTEST_STRIPPED})

pipeline_add_test(symbolizer_test SOURCES symbolizer_test.c addr_child.c
	LIBS pl_symbolizer ${CMAKE_DL_LIBS} LABEL unit)
add_dependencies(symbolizer_test symtest_pie symtest_nopie symtest symtest_stripped)
target_compile_definitions(symbolizer_test PRIVATE
	SYMTEST_PIE="$<TARGET_FILE:symtest_pie>"
	SYMTEST_NOPIE="$<TARGET_FILE:symtest_nopie>"
	SYMTEST_SO="$<TARGET_FILE:symtest>"
	SYMTEST_STRIPPED="${SYMTEST_STRIPPED}"
	SYMTEST_SCRATCH="${CMAKE_CURRENT_BINARY_DIR}")

# Validator: threads x iterations, each thread with its own reader.
pipeline_add_test(symbolizer_concurrency_test SOURCES symbolizer_concurrency_test.c
	LIBS pl_symbolizer LABEL concurrency ARGS 4 2000)
# The same under a tight bound: files' symbols evicted and reloaded while
# other threads name frames with them.
add_test(NAME symbolizer_concurrency_evict COMMAND symbolizer_concurrency_test 4 2000 evict)
set_tests_properties(symbolizer_concurrency_evict PROPERTIES LABELS concurrency)

# DWARF, demangling, separate debug info.
include(${CMAKE_CURRENT_SOURCE_DIR}/symbolizer_dwarf.cmake)

# Process handling: perf maps, NSpid, openat2 in a root, exec/exit/flush.
pipeline_add_test(symbolizer_procs_test SOURCES symbolizer_procs_test.c
	LIBS pl_symbolizer LABEL unit)
add_test(NAME symbolizer_procs_concurrency COMMAND symbolizer_procs_test exec_concurrent)
set_tests_properties(symbolizer_procs_concurrency PROPERTIES SKIP_RETURN_CODE 77 LABELS concurrency)
