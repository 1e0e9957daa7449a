# bench/ tests (label unit, no privileges, 127.0.0.1 only):
#   bench_test   the log-linear histogram's error bound and merge; the
#                workload server (pipeline-bench-server, run as a child);
#                the open-loop load generator against it (rate reached, latency
#                from the due time, auto scale-down, refused port). About 10 s.

pipeline_add_test(bench_test SOURCES bench_test.c LIBS pl_bench_load m LABEL unit)
target_compile_definitions(bench_test PRIVATE
	BENCH_SERVER_BIN="${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/pipeline-bench-server")
add_dependencies(bench_test pipeline-bench-server)
set_tests_properties(bench_test PROPERTIES TIMEOUT 60)
