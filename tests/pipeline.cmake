# pipeline/ unit and concurrency tests (no privileges).
pipeline_add_test(pipeline_test SOURCES pipeline_test.c LIBS pl_pipeline_core LABEL unit)
pipeline_add_test(spsc_queue_test SOURCES spsc_queue_test.c LIBS pl_pipeline_core
	LABEL "unit;concurrency" ARGS 2000000 1024)
# Uprobe placement and allocator discovery (reads this process's own maps).
pipeline_add_test(alloc_target_test SOURCES alloc_target_test.c LIBS pl_pipeline_core ${CMAKE_DL_LIBS}
	LABEL unit)
