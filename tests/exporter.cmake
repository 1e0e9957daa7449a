# exporter tests (no privileges, 127.0.0.1 only):
#   otlp_receiver   a scriptable OTLP/HTTP(S) receiver the tests run as a child
#                   process (see the comment at the top of otlp_receiver.c)
#   exporter_test   URL, HTTP head and response parser, Retry-After, backoff,
#                   gzip, partial_success; then the exporter end to end against
#                   otlp_receiver: retries, timeouts, refused connects, queue
#                   bound, shutdown deadline, --otlp-file, TLS with a certificate
#                   made by the openssl CLI (skipped without it, failed under CI);
#                   the profile file writes on the same loop (files only, behind
#                   a stuck or backing-off request, the file queue's bound);
#                   a backlog drained back to back once the collector is up;
#                   the exporter's heap bounded by the queue while the
#                   collector never answers or refuses connections.
# Labelled concurrency too: the exporter thread runs against the test's
# submitting thread, so CI runs it under ThreadSanitizer.
# malloc/calloc/realloc/free are wrapped so that the test counts the heap
# the exporter holds (pl_exporter is static, so --wrap reaches its calls).

add_executable(otlp_receiver otlp_receiver.c)
target_link_libraries(otlp_receiver PRIVATE PkgConfig::OPENSSL PkgConfig::ZLIB)

find_program(PIPELINE_OPENSSL_EXE openssl)
if(PIPELINE_OPENSSL_EXE)
	set(pl_openssl ${PIPELINE_OPENSSL_EXE})
else()
	set(pl_openssl openssl) # the TLS test reports it missing (fails under CI)
endif()

pipeline_add_test(exporter_test SOURCES exporter_test.c LIBS pl_exporter LABEL "unit;concurrency")
target_link_options(exporter_test PRIVATE
	-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free)
add_dependencies(exporter_test otlp_receiver)
target_compile_definitions(exporter_test PRIVATE
	OTLP_RECEIVER_PATH="$<TARGET_FILE:otlp_receiver>" OPENSSL_CLI="${pl_openssl}")
set_tests_properties(exporter_test PROPERTIES TIMEOUT 180)
