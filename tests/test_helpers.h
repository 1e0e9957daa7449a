/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Minimal test harness shared by every tests/<module>_test.c: a table of
 * test functions, CHECK macros that report file:line and fail the test,
 * exit 77 for "skipped" (declared to ctest as SKIP_RETURN_CODE).
 */
#ifndef PIPELINE_TEST_HELPERS_H
#define PIPELINE_TEST_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_SKIP 77

struct test_case {
	const char *name;
	int (*fn)(void); /* 0 pass, 1 fail, TEST_SKIP skipped */
};

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                                         \
	do {                                                                                       \
		unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b);     \
		if (_a != _b) {                                                                    \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%llu != %llu)\n",          \
				__FILE__, __LINE__, #a, #b, _a, _b);                               \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n",      \
				__FILE__, __LINE__, #a, #b, _a ? _a : "(null)",                    \
				_b ? _b : "(null)");                                               \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

/* Runs every case (or only the one named by argv[1]); returns the exit code. */
static inline int test_run_all(const struct test_case *cases, size_t n, int argc, char **argv)
{
	int failed = 0, skipped = 0, ran = 0;
	for (size_t i = 0; i < n; i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
			continue;
		ran++;
		int rc = cases[i].fn();
		if (rc == TEST_SKIP) {
			printf("SKIP %s\n", cases[i].name);
			skipped++;
		} else if (rc) {
			printf("FAIL %s\n", cases[i].name);
			failed++;
		} else {
			printf("ok   %s\n", cases[i].name);
		}
	}
	if (failed)
		return 1;
	if (ran > 0 && skipped == ran)
		return TEST_SKIP;
	return 0;
}

#define TEST_MAIN(cases)                                                                           \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		return test_run_all(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);          \
	}

#endif /* PIPELINE_TEST_HELPERS_H */
