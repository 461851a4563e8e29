#ifndef TULLE_MICRO_BENCH_H
#define TULLE_MICRO_BENCH_H
/* Runs the named hot-path stage (micro-bench.c) `iterations` times: ns per operation, or -1
 * for an unknown name; *per_unit is ns per *unit (segment, byte) where that says more. */
double micro_bench(const char *name, long iterations, double *per_unit, const char **unit);
#endif
