# Real-browser tests (label browser): headless /usr/bin/chromium driven by
# playwright-core from tests/browser/node_modules (`npm ci --prefix
# tests/browser` installs it; the script fails with that hint when it is
# missing). Without /usr/bin/chromium the test skips (77), unless CI is set.
#
# flamegraph_sample writes the SVG of a hand-built profile with known answers
# (see tests/flamegraph_sample_main.c); the browser test zooms, resets and
# searches it. The lead's integration test reuses flamegraph.test.mjs with a
# real profile: node flamegraph.test.mjs FILE.svg --zoom NAME --search NAME
# --expect-percent P [--tolerance T].

add_executable(flamegraph_sample flamegraph_sample_main.c)
target_link_libraries(flamegraph_sample PRIVATE pl_encoder)

set(PIPELINE_BROWSER_DIR ${CMAKE_CURRENT_SOURCE_DIR}/browser)
set(PIPELINE_SAMPLE_SVG ${CMAKE_CURRENT_BINARY_DIR}/flamegraph_sample.svg)

add_test(NAME browser_flamegraph_sample COMMAND flamegraph_sample ${PIPELINE_SAMPLE_SVG})
set_tests_properties(browser_flamegraph_sample PROPERTIES
	LABELS browser FIXTURES_SETUP flamegraph_sample_svg)

find_program(PIPELINE_NODE node)
if(PIPELINE_NODE)
	add_test(NAME browser_flamegraph
		COMMAND ${PIPELINE_NODE} ${PIPELINE_BROWSER_DIR}/flamegraph.test.mjs
			${PIPELINE_SAMPLE_SVG} --zoom compute --search func_x --expect-percent 31.0
			--screenshot ${CMAKE_CURRENT_BINARY_DIR}/flamegraph_sample.png)
else()
	# No node: say so, fail under CI, skip elsewhere.
	add_test(NAME browser_flamegraph
		COMMAND sh -c "echo 'node not found: install the Debian package nodejs'; [ -z \"$CI\" ] && exit 77; exit 1")
endif()
set_tests_properties(browser_flamegraph PROPERTIES
	LABELS browser SKIP_RETURN_CODE 77 TIMEOUT 120
	FIXTURES_REQUIRED flamegraph_sample_svg)
