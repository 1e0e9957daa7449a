# Root-only tests of the whole agent (label bpf): under CI=true they must run.
add_test(NAME integration_cpu COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration_cpu.sh)
add_test(NAME cli_errors COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli_errors.sh)
set_tests_properties(integration_cpu cli_errors PROPERTIES SKIP_RETURN_CODE 77 LABELS bpf
	ENVIRONMENT "PIPELINE_SOURCE_DIR=${PROJECT_SOURCE_DIR};PIPELINE_BINARY_DIR=${PROJECT_BINARY_DIR}"
	TIMEOUT 300 RUN_SERIAL TRUE)
add_test(NAME pipeline_threads COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/pipeline_threads.sh)
set_tests_properties(pipeline_threads PROPERTIES SKIP_RETURN_CODE 77 LABELS "bpf;concurrency"
	ENVIRONMENT "PIPELINE_SOURCE_DIR=${PROJECT_SOURCE_DIR};PIPELINE_BINARY_DIR=${PROJECT_BINARY_DIR}"
	TIMEOUT 120 RUN_SERIAL TRUE)
add_test(NAME integration_otlp COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration_otlp.sh)
set_tests_properties(integration_otlp PROPERTIES SKIP_RETURN_CODE 77 LABELS bpf
	ENVIRONMENT "PIPELINE_SOURCE_DIR=${PROJECT_SOURCE_DIR};PIPELINE_BINARY_DIR=${PROJECT_BINARY_DIR}"
	TIMEOUT 300 RUN_SERIAL TRUE)

# stack_spray: a workload whose samples almost never share a stack (big OTLP
# requests for integration_otlp.sh's memory-bound runs), built like
# tools/workload: clang, frame pointers everywhere, no sibling calls.
set(STACK_SPRAY_BIN ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/stack_spray)
add_custom_command(OUTPUT ${STACK_SPRAY_BIN}
	COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}
	COMMAND ${BPF_CLANG} -std=gnu11 -O2 -g -Wall -Wextra -fno-omit-frame-pointer
		-mno-omit-leaf-frame-pointer -fno-optimize-sibling-calls -pthread
		${CMAKE_CURRENT_SOURCE_DIR}/stack_spray.c -o ${STACK_SPRAY_BIN}
	DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/stack_spray.c
	COMMENT "stack_spray (clang, frame pointers everywhere)")
add_custom_target(stack_spray ALL DEPENDS ${STACK_SPRAY_BIN})
