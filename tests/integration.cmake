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
