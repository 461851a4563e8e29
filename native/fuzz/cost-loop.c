/*
 * Instruction counts of the plain packet loops, for comparing two builds under callgrind (the
 * per-peer counters must cost nothing measurable): the real inbound_thread / outbound_thread on
 * the fake descriptors of fake-io.h, fed N batches of 64 valid 1000-byte UDP packets from / to
 * peer 1 of the fake topology (fake-dp.h). Built without sanitizers or coverage (make cost).
 *
 *   valgrind --tool=callgrind --callgrind-out-file=out ./build/cost-loop in 200
 *   callgrind_annotate --inclusive=yes out | grep -E 'inbound_thread|outbound_thread'
 *
 * Modes: in (plain inbound), out (plain outbound), out-wg (encrypted outbound: seal).
 */
#include "common.h"
#include "fake-dp.h"
#include "fake-io.h"
#include "loop.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max) { (void)data, (void)max; return size; } /* not used */

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "in";
  int batches = argc > 2 ? atoi(argv[2]) : 100;
  int wg = !strcmp(mode, "out-wg"), in = !strcmp(mode, "in");
  if (batches < 1 || (!in && strcmp(mode, "out") && !wg)) {
    fprintf(stderr, "usage: cost-loop in|out|out-wg BATCHES\n");
    return 2;
  }
  struct fdp_config cfg = {.encrypted = wg, .mtu = 1420};
  struct dataplane *dp = fdp_new(&cfg);
  struct flow f = {.family = 4, .proto = 17, .sport = 4000, .dport = 5000, .ttl = 64, .id = 1};
  uint8_t a[4] = {10, 244, 2, 5}, b[4] = {10, 244, 9, 9};
  memcpy(f.src, in ? a : b, 4); /* peer 1 owns 10.244.2.0/24 */
  memcpy(f.dst, in ? b : a, 4);
  static uint8_t pkt[2000];
  size_t len = build_packet(&f, NULL, 1000, 7, 0, 1, pkt);
  struct sockaddr_storage from;
  socklen_t from_len = fdp_peer_addr(dp, 1, &from);
  for (int r = 0; r < batches; r++) {
    fake_reset();
    for (int i = 0; i < DP_BATCH; i++) {
      if (in) fake_push(&fake_udp_in, pkt, len, &from, from_len, 0);
      else fake_push(&fake_tun_in, pkt, len, NULL, 0, 0);
    }
    fake_run(in ? inbound_thread : outbound_thread, &dp->q[0], in ? 1 : 2);
  }
  uint64_t *c = dp->counters;
  printf("%s: %d batches, %llu delivered, %llu sent\n", mode, batches, (unsigned long long)c[TC_IN_DELIVERED_PACKETS],
         (unsigned long long)c[TC_OUT_SENT_PACKETS]);
  return 0;
}
