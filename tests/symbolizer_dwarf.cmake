# DWARF, demangling and separate debug info tests (included by
# tests/symbolizer.cmake). The subject, data/sym_inline_prog.cpp, is C++
# built here with the system C++ compiler, -g -O2 and nothing else (no
# sanitizer: its inlining is what is tested), then copied into stripped
# variants by make_debug_variants.sh (binutils objcopy/nm, xz).
find_program(PIPELINE_CXX NAMES g++ c++)
find_program(PIPELINE_XZ NAMES xz)
if(NOT PIPELINE_CXX OR NOT PIPELINE_XZ OR NOT CMAKE_OBJCOPY OR NOT CMAKE_NM)
	message(FATAL_ERROR "missing test tools (g++, xz, objcopy, nm): install the Debian "
		"packages g++, xz-utils and binutils (tools/install-deps.sh installs everything)")
endif()

set(SYMDW_DIR ${CMAKE_CURRENT_BINARY_DIR}/symdw)
set(SYMDW_PROG ${SYMDW_DIR}/sym_inline_prog)
set(SYMDW_SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/data/sym_inline_prog.cpp)
set(SYMDW_VARIANTS ${SYMDW_DIR}/variants)
add_custom_command(OUTPUT ${SYMDW_PROG}
	COMMAND ${CMAKE_COMMAND} -E make_directory ${SYMDW_DIR}
	COMMAND ${PIPELINE_CXX} -std=c++17 -g -O2 -Wall -Wextra -Wl,--build-id -o ${SYMDW_PROG}
		${SYMDW_SOURCE}
	DEPENDS ${SYMDW_SOURCE}
	COMMENT "Building the C++ DWARF test subject")
add_custom_command(OUTPUT ${SYMDW_VARIANTS}/sym_inline_prog.debug
		${SYMDW_VARIANTS}/buildid/sym_inline_prog ${SYMDW_VARIANTS}/debuglink/sym_inline_prog
		${SYMDW_VARIANTS}/mini/sym_inline_prog
	COMMAND ${CMAKE_COMMAND} -E env OBJCOPY=${CMAKE_OBJCOPY} NM=${CMAKE_NM}
		${CMAKE_CURRENT_SOURCE_DIR}/make_debug_variants.sh ${SYMDW_PROG} ${SYMDW_VARIANTS}
	DEPENDS ${SYMDW_PROG} ${CMAKE_CURRENT_SOURCE_DIR}/make_debug_variants.sh
	COMMENT "Stripping the DWARF test subject into its debug-info variants")
# The same subject built by clang++ (DWARF 5, no .debug_aranges: libdw 0.188
# cannot find its units by address without the symbolizer's own index).
find_program(PIPELINE_CLANGXX NAMES clang++)
if(NOT PIPELINE_CLANGXX)
	message(FATAL_ERROR "missing clang++: install the Debian package clang "
		"(tools/install-deps.sh installs everything)")
endif()
set(SYMDW_PROG_CLANG ${SYMDW_DIR}/sym_inline_prog_clang)
add_custom_command(OUTPUT ${SYMDW_PROG_CLANG}
	COMMAND ${CMAKE_COMMAND} -E make_directory ${SYMDW_DIR}
	COMMAND ${PIPELINE_CLANGXX} -std=c++17 -g -O2 -Wall -Wextra -Wl,--build-id
		-o ${SYMDW_PROG_CLANG} ${SYMDW_SOURCE}
	DEPENDS ${SYMDW_SOURCE}
	COMMENT "Building the C++ DWARF test subject with clang++")
add_custom_target(symdw_subjects DEPENDS ${SYMDW_PROG} ${SYMDW_PROG_CLANG}
	${SYMDW_VARIANTS}/sym_inline_prog.debug ${SYMDW_VARIANTS}/mini/sym_inline_prog)

pipeline_add_test(symbolizer_dwarf_test SOURCES symbolizer_dwarf_test.c addr_child.c
	LIBS pl_symbolizer LABEL unit)
add_dependencies(symbolizer_dwarf_test symdw_subjects)
target_compile_definitions(symbolizer_dwarf_test PRIVATE
	SYMDW_PROG="${SYMDW_PROG}"
	SYMDW_PROG_CLANG="${SYMDW_PROG_CLANG}"
	SYMDW_SOURCE="${SYMDW_SOURCE}"
	SYMDW_VARIANTS="${SYMDW_VARIANTS}"
	SYMDW_SCRATCH="${SYMDW_DIR}")
