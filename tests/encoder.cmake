# encoder tests (label unit, no privileges):
#   encoder_test        folded and pprof encoders on a hand-built profile
#   proto_compat_test   the project's .proto files vs the pinned official ones
#                       (../shared/reference); fails under CI when absent
#   pprof_gotool_test   `go tool pprof` reads pprof__encode's output; fails
#                       under CI when go is absent

pipeline_add_test(encoder_test SOURCES encoder_test.c LIBS pl_encoder PkgConfig::ZLIB LABEL unit)
# allocation failure injection (see encoder_test.c): the encoders' objects come
# from the static pl_encoder, so --wrap reaches their calls too
target_link_options(encoder_test PRIVATE
	-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free)

find_program(PIPELINE_PROTOC_EXE protoc)
if(PIPELINE_PROTOC_EXE)
	set(pl_protoc ${PIPELINE_PROTOC_EXE})
else()
	set(pl_protoc protoc) # the test reports it missing (fails under CI)
endif()
pipeline_add_test(proto_compat_test SOURCES proto_compat_test.c LIBS pl_encoder PkgConfig::ZLIB
	LABEL unit)
target_compile_definitions(proto_compat_test PRIVATE PIPELINE_PROTOC="${pl_protoc}"
	PIPELINE_SOURCE_DIR_DEFAULT="${PROJECT_SOURCE_DIR}")

add_executable(pprof_sample pprof_sample_main.c)
target_link_libraries(pprof_sample PRIVATE pl_encoder)
find_program(PIPELINE_GO_EXE go)
set(pl_go_env "")
if(PIPELINE_GO_EXE)
	set(pl_go_env "GO=${PIPELINE_GO_EXE}")
endif()
add_test(NAME pprof_gotool_test
	COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/pprof_gotool_test.sh $<TARGET_FILE:pprof_sample>)
set_tests_properties(pprof_gotool_test PROPERTIES SKIP_RETURN_CODE 77 LABELS unit TIMEOUT 300
	ENVIRONMENT "PIPELINE_SOURCE_DIR=${PROJECT_SOURCE_DIR};PIPELINE_BINARY_DIR=${PROJECT_BINARY_DIR};${pl_go_env}")
