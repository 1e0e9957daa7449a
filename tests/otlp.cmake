# OTLP Profiles encoder (encoder/otlp*.c) and the otlp-check validator
# (tools/otlp_check.c), label unit, no privileges:
#   otlp_encoder_test   hand-built profiles encoded, unpacked and checked field
#                       by field; every request also passed to otlp-check;
#                       otlp-check on corrupted requests and on the reference
#                       sample; `protoc --decode` against ../shared/reference
#                       (skipped without it unless CI is set, then it fails);
#                       a timed 20,000-stack interval; allocation failures;
#                       the encoder context (struct otlp_encoder): the same
#                       bytes as fresh encodes call after call, its cache
#                       bound, allocation failures on a warm context.
# malloc/calloc/realloc/free are wrapped so that the test can fail each
# allocation of the encoder in turn (the encoder comes from the static
# pl_encoder, so --wrap reaches its calls).
pipeline_add_test(otlp_encoder_test SOURCES otlp_encoder_test.c LIBS pl_encoder LABEL unit)
target_link_options(otlp_encoder_test PRIVATE
	-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free)
add_dependencies(otlp_encoder_test otlp-check)
find_program(PIPELINE_PROTOC_EXE protoc)
if(PIPELINE_PROTOC_EXE)
	set(pl_otlp_protoc ${PIPELINE_PROTOC_EXE})
else()
	set(pl_otlp_protoc protoc) # the test reports it missing (fails under CI)
endif()
target_compile_definitions(otlp_encoder_test PRIVATE
	OTLP_CHECK_BIN="$<TARGET_FILE:otlp-check>"
	PIPELINE_PROTOC="${pl_otlp_protoc}"
	PIPELINE_SOURCE_DIR_DEFAULT="${PROJECT_SOURCE_DIR}")
set_tests_properties(otlp_encoder_test PROPERTIES TIMEOUT 300)
