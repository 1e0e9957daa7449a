// SPDX-License-Identifier: BSD-2-Clause
/*
 * C++ workload of tests/integration_symbols.sh (section 6): nearly all its
 * CPU time is spent in template members forced inline into an out-of-line
 * template function, so a profile of it shows demangled names, file:line
 * and inlined frames only if the symbolizer reads its DWARF. Built -O2 -g
 * with frame pointers (tests/integration.cmake).
 *
 * Usage: cpp_workload SECONDS
 *
 * The "@name" comments mark lines the test looks for in the profile; it
 * finds them by reading this file.
 */
#include <cstdlib>
#include <ctime>

namespace shop
{
template <typename T> struct Pricer {
	T rate;

	__attribute__((always_inline)) inline T discount(T x)
	{
		T d = x;
		for (int i = 0; i < 64; i++)
			d = (d * rate + i) % 1000003; // @discount
		return d;
	}

	__attribute__((always_inline)) inline T total(T x)
	{
		return discount(x) + 1; // @total
	}
};

template <typename T> __attribute__((noinline)) T checkout(T n)
{
	Pricer<T> p{7};
	T sum = 0;
	for (T i = 0; i < n; i++)
		sum += p.total(i); // @checkout
	return sum;
}
} // namespace shop

static double now_s()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5;
	double end = now_s() + (seconds > 0 && seconds < 600 ? seconds : 5);
	volatile long sink = 0;

	while (now_s() < end)
		sink = sink + shop::checkout<long>(20000);
	return (int)(sink & 0);
}
