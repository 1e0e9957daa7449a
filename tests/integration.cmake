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

# Symbolization of short-lived processes, JIT perf maps, deleted binaries and
# private mount namespaces (tests/integration_symbols.sh), with two test
# programs built like tools/workload: clang, frame pointers everywhere.
foreach(prog proc_storm jit_perfmap)
	set(prog_bin ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/${prog})
	add_custom_command(OUTPUT ${prog_bin}
		COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}
		COMMAND ${BPF_CLANG} -std=gnu11 -O2 -g -Wall -Wextra -fno-omit-frame-pointer
			-mno-omit-leaf-frame-pointer -fno-optimize-sibling-calls
			${CMAKE_CURRENT_SOURCE_DIR}/${prog}.c -o ${prog_bin}
		DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${prog}.c
		COMMENT "${prog} (clang, frame pointers everywhere)")
	add_custom_target(${prog} ALL DEPENDS ${prog_bin})
endforeach()
# The storm's program: no C library (see its header comment), static.
set(NOLIBC_BIN ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/proc_storm_nolibc)
add_custom_command(OUTPUT ${NOLIBC_BIN}
	COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}
	COMMAND ${BPF_CLANG} -std=gnu11 -O2 -g -Wall -Wextra -fno-omit-frame-pointer
		-mno-omit-leaf-frame-pointer -fno-optimize-sibling-calls -static -nostdlib
		-ffreestanding -fno-stack-protector -fno-builtin
		${CMAKE_CURRENT_SOURCE_DIR}/proc_storm_nolibc.c -o ${NOLIBC_BIN}
	DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/proc_storm_nolibc.c
	COMMENT "proc_storm_nolibc (clang, static, no C library)")
add_custom_target(proc_storm_nolibc ALL DEPENDS ${NOLIBC_BIN})
# The C++ workload of integration_symbols.sh section 6: -O2 -g with frame
# pointers, its template members forced inline. clang++, because GCC leaves
# leaf functions without a frame pointer whatever the flags
# (../shared/MEASURED.md), and the walk would skip main.
find_program(PIPELINE_CLANGXX NAMES clang++)
if(NOT PIPELINE_CLANGXX)
	message(FATAL_ERROR "missing clang++: install the Debian package clang "
		"(tools/install-deps.sh installs everything)")
endif()
set(CPP_WORKLOAD_BIN ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/cpp_workload)
add_custom_command(OUTPUT ${CPP_WORKLOAD_BIN}
	COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}
	COMMAND ${PIPELINE_CLANGXX} -std=c++17 -O2 -g -Wall -Wextra -fno-omit-frame-pointer
		-mno-omit-leaf-frame-pointer -o ${CPP_WORKLOAD_BIN}
		${CMAKE_CURRENT_SOURCE_DIR}/data/cpp_workload.cpp
	DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/data/cpp_workload.cpp
	COMMENT "cpp_workload (clang++, -O2 -g, frame pointers)")
add_custom_target(cpp_workload ALL DEPENDS ${CPP_WORKLOAD_BIN})

add_test(NAME integration_symbols COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration_symbols.sh)
set_tests_properties(integration_symbols PROPERTIES SKIP_RETURN_CODE 77 LABELS bpf
	ENVIRONMENT "PIPELINE_SOURCE_DIR=${PROJECT_SOURCE_DIR};PIPELINE_BINARY_DIR=${PROJECT_BINARY_DIR}"
	TIMEOUT 300 RUN_SERIAL TRUE)

# Allocation profiling (tests/integration_alloc.sh) of tests/leaker.c, built
# with frame pointers everywhere, against glibc's malloc and jemalloc's.
set(LEAKER_BIN ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/leaker)
set(LEAKER_JE_BIN ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/leaker_jemalloc)
set(LEAKER_JES_BIN ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/leaker_jemalloc_static)
find_library(PIPELINE_JEMALLOC_STATIC NAMES libjemalloc.a)
if(NOT PIPELINE_JEMALLOC_STATIC)
	message(FATAL_ERROR "missing libjemalloc.a: install the Debian package libjemalloc-dev "
		"(tools/install-deps.sh installs everything)")
endif()
add_custom_command(OUTPUT ${LEAKER_BIN} ${LEAKER_JE_BIN} ${LEAKER_JES_BIN}
	COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}
	COMMAND ${BPF_CLANG} -std=gnu11 -O1 -g -Wall -Wextra -fno-omit-frame-pointer
		-mno-omit-leaf-frame-pointer -fno-optimize-sibling-calls
		-pthread ${CMAKE_CURRENT_SOURCE_DIR}/leaker.c -o ${LEAKER_BIN}
	COMMAND ${BPF_CLANG} -std=gnu11 -O1 -g -Wall -Wextra -fno-omit-frame-pointer
		-mno-omit-leaf-frame-pointer -fno-optimize-sibling-calls
		-pthread ${CMAKE_CURRENT_SOURCE_DIR}/leaker.c -o ${LEAKER_JE_BIN} -ljemalloc
	COMMAND ${BPF_CLANG} -std=gnu11 -O1 -g -Wall -Wextra -fno-omit-frame-pointer
		-mno-omit-leaf-frame-pointer -fno-optimize-sibling-calls
		-pthread ${CMAKE_CURRENT_SOURCE_DIR}/leaker.c -o ${LEAKER_JES_BIN}
		${PIPELINE_JEMALLOC_STATIC} -lm -ldl
	DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/leaker.c
	COMMENT "leaker, leaker_jemalloc, leaker_jemalloc_static (clang, frame pointers)")
add_custom_target(leaker ALL DEPENDS ${LEAKER_BIN} ${LEAKER_JE_BIN} ${LEAKER_JES_BIN})
add_test(NAME integration_alloc COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration_alloc.sh)
# Also under ThreadSanitizer (label concurrency): allocation records cross
# the readers, workers and the flush thread like samples do.
set_tests_properties(integration_alloc PROPERTIES SKIP_RETURN_CODE 77 LABELS "bpf;concurrency"
	ENVIRONMENT "PIPELINE_SOURCE_DIR=${PROJECT_SOURCE_DIR};PIPELINE_BINARY_DIR=${PROJECT_BINARY_DIR}"
	TIMEOUT 300 RUN_SERIAL TRUE)

# --unwind dwarf (tests/integration_unwind.sh) on a workload a frame-pointer
# walk cannot follow: GCC, -O2 -fomit-frame-pointer, through a shared
# library built the same way and through glibc's qsort. No sibling calls, so
# every frame of the truth is a real call.
find_program(PIPELINE_GCC NAMES gcc)
if(NOT PIPELINE_GCC)
	message(FATAL_ERROR "missing gcc: install the Debian package gcc "
		"(tools/install-deps.sh installs everything)")
endif()
# Two builds of the same code: without frame pointers (unwind_workload), and
# with them (unwind_workload_fp, section 4: GCC still gives leaves none).
set(UNWIND_BINS)
foreach(variant "" "_fp")
	if(variant STREQUAL "")
		set(fp_flag -fomit-frame-pointer)
	else()
		set(fp_flag -fno-omit-frame-pointer)
	endif()
	set(flags -O2 -g -Wall -Wextra ${fp_flag} -fno-optimize-sibling-calls)
	set(lib ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/libunwind_chain${variant}.so)
	set(bin ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/unwind_workload${variant})
	add_custom_command(OUTPUT ${lib} ${bin}
		COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}
		COMMAND ${PIPELINE_GCC} ${flags} -fPIC -shared -o ${lib}
			${CMAKE_CURRENT_SOURCE_DIR}/unwind_chain.c
		COMMAND ${PIPELINE_GCC} ${flags} -o ${bin}
			${CMAKE_CURRENT_SOURCE_DIR}/unwind_workload.c
			-L${CMAKE_RUNTIME_OUTPUT_DIRECTORY} -lunwind_chain${variant} -Wl,-rpath,$ORIGIN
		DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/unwind_chain.c
			${CMAKE_CURRENT_SOURCE_DIR}/unwind_workload.c
		COMMENT "unwind_workload${variant} (gcc -O2 ${fp_flag}, and its library)"
		VERBATIM)
	list(APPEND UNWIND_BINS ${bin})
endforeach()
add_custom_target(unwind_workload ALL DEPENDS ${UNWIND_BINS})
add_test(NAME integration_unwind COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration_unwind.sh)
set_tests_properties(integration_unwind PROPERTIES SKIP_RETURN_CODE 77 LABELS bpf
	ENVIRONMENT "PIPELINE_SOURCE_DIR=${PROJECT_SOURCE_DIR};PIPELINE_BINARY_DIR=${PROJECT_BINARY_DIR}"
	TIMEOUT 300 RUN_SERIAL TRUE)

# Off-CPU and lock profiles (tests/integration_wait.sh) of tests/wait_workload.c:
# frame pointers in the program, none in the C library it waits in.
set(WAIT_WORKLOAD_BIN ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/wait_workload)
add_custom_command(OUTPUT ${WAIT_WORKLOAD_BIN}
	COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}
	COMMAND ${PIPELINE_GCC} -std=gnu11 -O2 -g -Wall -Wextra -fno-omit-frame-pointer
		-fno-optimize-sibling-calls -pthread -o ${WAIT_WORKLOAD_BIN}
		${CMAKE_CURRENT_SOURCE_DIR}/wait_workload.c
	DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/wait_workload.c
	COMMENT "wait_workload (gcc -O2, frame pointers)")
add_custom_target(wait_workload ALL DEPENDS ${WAIT_WORKLOAD_BIN})
add_test(NAME integration_wait COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration_wait.sh)
# Also under ThreadSanitizer (label concurrency): wait records cross the
# readers, workers and the flush thread like samples do.
set_tests_properties(integration_wait PROPERTIES SKIP_RETURN_CODE 77 LABELS "bpf;concurrency"
	ENVIRONMENT "PIPELINE_SOURCE_DIR=${PROJECT_SOURCE_DIR};PIPELINE_BINARY_DIR=${PROJECT_BINARY_DIR}"
	TIMEOUT 300 RUN_SERIAL TRUE)

# --clock tick (tests/integration_tick.sh): tests/tick_workload.c wakes in
# step with the scheduler tick; the known-split workload is tools/workload.c.
set(TICK_WORKLOAD_BIN ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/tick_workload)
add_custom_command(OUTPUT ${TICK_WORKLOAD_BIN}
	COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}
	COMMAND ${PIPELINE_GCC} -std=gnu11 -O2 -g -Wall -Wextra -fno-omit-frame-pointer
		-o ${TICK_WORKLOAD_BIN} ${CMAKE_CURRENT_SOURCE_DIR}/tick_workload.c
	DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tick_workload.c
	COMMENT "tick_workload (gcc -O2, frame pointers)")
add_custom_target(tick_workload ALL DEPENDS ${TICK_WORKLOAD_BIN})
add_test(NAME integration_tick COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration_tick.sh)
set_tests_properties(integration_tick PROPERTIES SKIP_RETURN_CODE 77 LABELS bpf
	ENVIRONMENT "PIPELINE_SOURCE_DIR=${PROJECT_SOURCE_DIR};PIPELINE_BINARY_DIR=${PROJECT_BINARY_DIR}"
	TIMEOUT 300 RUN_SERIAL TRUE)
