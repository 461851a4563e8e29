/*
 * Runs one micro-benchmark stage (native/src/micro-bench.c) a given number of times, for
 * scripts/count-instructions.sh: under callgrind the instruction count is repeatable on a
 * loaded machine, where the ns/op of npm run bench:micro is not.
 */
#include "micro-bench.h"
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s STAGE ITERATIONS\n", argv[0]);
    return 2;
  }
  double per_unit;
  const char *unit;
  if (micro_bench(argv[1], atol(argv[2]), &per_unit, &unit) < 0) {
    fprintf(stderr, "unknown stage '%s'\n", argv[1]);
    return 2;
  }
  return 0;
}
