# pipeline/ unit and concurrency tests (no privileges).
pipeline_add_test(pipeline_test SOURCES pipeline_test.c LIBS pl_pipeline_core LABEL unit)
pipeline_add_test(spsc_queue_test SOURCES spsc_queue_test.c LIBS pl_pipeline_core
	LABEL "unit;concurrency" ARGS 2000000 1024)
