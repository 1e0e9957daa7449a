# Flame graph (encoder/flamegraph.c): unit tests, label unit. The SVG is
# checked as text (well-formedness, escaping, geometry, classes, title, no
# external URL, 100k-stack speed); tests/browser.cmake drives it in Chromium.
# malloc/calloc/realloc are wrapped so that the test can fail each allocation
# of the encoder in turn (see alloc_failures in flamegraph_test.c).
pipeline_add_test(flamegraph_test SOURCES flamegraph_test.c LIBS pl_encoder LABEL unit)
target_compile_definitions(flamegraph_test PRIVATE FLAMEGRAPH_TEST_WRAP_ALLOC)
target_link_options(flamegraph_test PRIVATE
	-Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc)
