/*
 * Target `apply`: the command stream from TypeScript (dataplane.c dp_validate/dp_apply, and the
 * session commands of wg.c) against a model: the same validation written out again (offset of the
 * first bad record, nothing applied), then peers, routes, peer-address reference counts and
 * sessions (slot, indices, role, keys, a peer's current/next) as a plain list says they must be.
 * After each input everything is deleted again through commands and the tables must be empty.
 *
 * Input: [encrypted u8][ipv6 socket u8] then records ([len u16][command bytes]), concatenated into
 * one batch (so a record's own size field may lie). Mutator: valid commands of every op with
 * small peer ids, or one field (op, size, peer id up to and past DP_MAX_PEERS, family, prefix
 * length, address, role).
 */
#include "common.h"
#include "fake-dp.h"
#include "fake-io.h"
#include "loop.h"

#define HEAD 2
#define MAXM 1024

struct m_peer { uint32_t id; int fam; uint16_t port; uint8_t a[16]; };
struct m_route { int fam, len; uint8_t a[16]; uint32_t peer; };
struct m_sess { uint32_t local, peer, remote; int role; uint8_t keys[64]; };
struct m_wpeer { uint32_t id, cur, next; };

static struct m_peer peers[MAXM];
static struct m_route routes[MAXM];
static struct m_sess sess[MAXM];
static struct m_wpeer wps[MAXM];
static uint32_t touched[MAXM];
static size_t np, nr, ns, nw, nt;

static size_t op_size(int op) {
  static const uint8_t s[9] = {0, 28, 8, 28, 28, 84, 8, 8, 8};
  return op >= 1 && op <= 8 ? s[op] : 0;
}

static long model_validate(const uint8_t *c, size_t len, int enc) {
  size_t at = 0;
  while (at < len) {
    if (len - at < 4) return (long)at;
    const uint8_t *r = c + at;
    size_t size = rd16le(r + 2);
    if (!op_size(r[0]) || size != op_size(r[0]) || size > len - at) return (long)at;
    if (r[0] != 4 && r[0] != 6 && rd32le(r + 4) >= DP_MAX_PEERS) return (long)at;
    if (r[0] == 1 || r[0] == 3 || r[0] == 4) {
      if (r[8] != 4 && r[8] != 6) return (long)at;
      if (r[0] != 1 && r[9] > (r[8] == 4 ? 32 : 128)) return (long)at;
    }
    at += size;
  }
  if (!enc)
    for (at = 0; at < len; at += rd16le(c + at + 2))
      if (c[at] >= 5) return (long)at;
  return -1;
}

static void mask(uint8_t *o, int fam, const uint8_t *a, int len) {
  memset(o, 0, 16);
  for (int i = 0; i < (fam == 4 ? 4 : 16); i++) {
    int bits = len - i * 8;
    o[i] = bits >= 8 ? a[i] : bits <= 0 ? 0 : (uint8_t)(a[i] & (0xff << (8 - bits)));
  }
}

static struct m_wpeer *wpeer(uint32_t id) {
  for (size_t i = 0; i < nw; i++)
    if (wps[i].id == id) return &wps[i];
  if (nw == MAXM) abort();
  wps[nw] = (struct m_wpeer){id, 0, 0};
  return &wps[nw++];
}

static void touch(uint32_t id) {
  for (size_t i = 0; i < nt; i++)
    if (touched[i] == id) return;
  if (nt < MAXM) touched[nt++] = id;
}

static void drop_sess(size_t i) {
  uint32_t slot = (sess[i].local & WG_SESSION_MASK) + 1;
  struct m_wpeer *w = wpeer(sess[i].peer);
  if (w->cur == slot) w->cur = 0;
  if (w->next == slot) w->next = 0;
  sess[i] = sess[--ns];
}

static void model_apply(const uint8_t *c, size_t len, int enc) {
  for (size_t at = 0; at < len; at += rd16le(c + at + 2)) {
    const uint8_t *r = c + at;
    uint32_t id = rd32le(r + 4);
    if (r[0] != 4 && r[0] != 6) touch(id);
    switch (r[0]) {
    case 1: {
      size_t i = 0;
      while (i < np && peers[i].id != id) i++;
      if (i == np) np++;
      peers[i] = (struct m_peer){id, r[8], (uint16_t)rd16le(r + 10), {0}};
      memcpy(peers[i].a, r + 12, r[8] == 4 ? 4 : 16);
      break;
    }
    case 2:
      for (size_t i = 0; i < np; i++)
        if (peers[i].id == id) peers[i--] = peers[--np];
      if (enc) {
        for (size_t i = 0; i < ns; i++)
          if (sess[i].peer == id) drop_sess(i--);
        struct m_wpeer *w = wpeer(id);
        w->cur = w->next = 0;
      }
      break;
    case 3:
    case 4: {
      uint8_t k[16];
      mask(k, r[8], r + 12, r[9]);
      size_t i = 0;
      while (i < nr && !(routes[i].fam == r[8] && routes[i].len == r[9] && !memcmp(routes[i].a, k, 16))) i++;
      if (r[0] == 4) {
        if (i < nr) routes[i] = routes[--nr];
      } else {
        if (i == nr) nr++;
        routes[i] = (struct m_route){r[8], r[9], {0}, id};
        memcpy(routes[i].a, k, 16);
      }
      break;
    }
    case 5: {
      uint32_t local = rd32le(r + 8);
      for (size_t i = 0; i < ns; i++)
        if ((sess[i].local & WG_SESSION_MASK) == (local & WG_SESSION_MASK)) drop_sess(i--);
      sess[ns] = (struct m_sess){local, id, rd32le(r + 12), r[16] == 1, {0}};
      memcpy(sess[ns++].keys, r + 20, 64);
      struct m_wpeer *w = wpeer(id);
      if (r[16] == 1) w->cur = (local & WG_SESSION_MASK) + 1, w->next = 0;
      else w->next = (local & WG_SESSION_MASK) + 1;
      break;
    }
    case 6:
      for (size_t i = 0; i < ns; i++)
        if (sess[i].local == id) drop_sess(i--);
      break;
    }
  }
}

static uint32_t brute_route(int fam, const uint8_t *a) {
  int best = -1;
  uint32_t p = RT_NONE;
  for (size_t i = 0; i < nr; i++) {
    uint8_t m[16];
    mask(m, fam, a, routes[i].len);
    if (routes[i].fam == fam && routes[i].len > best && !memcmp(m, routes[i].a, 16)) best = routes[i].len, p = routes[i].peer;
  }
  return p;
}

static void check(struct dataplane *dp) {
  FUZZ_ASSERT(dp->routes.used == nr, "route table holds %zu, model %zu", dp->routes.used, nr);
  for (size_t i = 0; i < nr; i++) {
    uint32_t got = rt_lookup(&dp->routes, routes[i].fam, routes[i].a), want = brute_route(routes[i].fam, routes[i].a);
    FUZZ_ASSERT(got == want, "route lookup %u, model %u", got, want);
  }
  for (size_t i = 0; i < nt; i++) {
    struct dp_peer *p = peer_get(dp, touched[i]);
    size_t k = 0;
    while (k < np && peers[k].id != touched[i]) k++;
    FUZZ_ASSERT(!!p == (k < np), "peer %u in use %d, model %d", touched[i], !!p, k < np);
    if (!p) continue;
    FUZZ_ASSERT(p->family == peers[k].fam && p->port == peers[k].port && !memcmp(p->addr, peers[k].a, peers[k].fam == 4 ? 4 : 16),
                "peer %u fields", touched[i]);
    uint32_t refs = 0;
    for (size_t j = 0; j < np; j++)
      refs += peers[j].fam == p->family && !memcmp(peers[j].a, p->addr, p->family == 4 ? 4 : 16);
    FUZZ_ASSERT(rt_lookup(&dp->peer_addrs, p->family, p->addr) == refs, "peer address refs %u, model %u",
                rt_lookup(&dp->peer_addrs, p->family, p->addr), refs);
    /* drops from the address are pinned on a peer that is there */
    struct dp_peer *owner = peer_get(dp, rt_lookup(&dp->addr_owner, p->family, p->addr));
    FUZZ_ASSERT(owner && owner->family == p->family && !memcmp(owner->addr, p->addr, p->family == 4 ? 4 : 16),
                "address of peer %u pinned on %u, which is not there", touched[i], rt_lookup(&dp->addr_owner, p->family, p->addr));
  }
  if (!dp->wg) return;
  for (size_t i = 0; i < ns; i++) {
    struct wg_session *s = wg_session_get(dp->wg, sess[i].local);
    FUZZ_ASSERT(s && s->peer == sess[i].peer && s->remote_index == sess[i].remote && s->initiator == sess[i].role &&
                    !memcmp(s->send_key, sess[i].keys, 32) && !memcmp(s->recv_key, sess[i].keys + 32, 32),
                "session %08x", sess[i].local);
  }
  for (size_t i = 0; i < nw; i++) {
    struct wg_peer *w = wg_peer_get(dp->wg, wps[i].id);
    FUZZ_ASSERT((w ? atomic_load(&w->cur) : 0) == wps[i].cur && (w ? atomic_load(&w->next) : 0) == wps[i].next, "peer %u cur/next %u/%u, model %u/%u",
                wps[i].id, w ? atomic_load(&w->cur) : 0, w ? atomic_load(&w->next) : 0, wps[i].cur, wps[i].next);
  }
}

static size_t put(uint8_t *r, int op, int size) {
  memset(r, 0, (size_t)size);
  r[0] = (uint8_t)op;
  wr16le(r + 2, (uint32_t)size);
  return (size_t)size;
}

/* Deletes what the model holds, through commands, and checks the tables are empty. */
static void undo(struct dataplane *dp) {
  static uint8_t c[MAXM * 3 * 28 + MAXM * 8];
  size_t at = 0;
  for (size_t i = 0; i < ns; i++) at += put(c + at, 6, 8), wr32le(c + at - 4, sess[i].local);
  for (size_t i = 0; i < nt; i++) at += put(c + at, 2, 8), wr32le(c + at - 4, touched[i]);
  for (size_t i = 0; i < nr; i++) {
    uint8_t *r = c + at;
    at += put(r, 4, 28);
    r[8] = (uint8_t)routes[i].fam, r[9] = (uint8_t)routes[i].len;
    memcpy(r + 12, routes[i].a, 16);
  }
  FUZZ_ASSERT(dp_apply(dp, c, at) == -1, "undo refused");
  FUZZ_ASSERT(dp->addr_owner.used == 0, "%zu address owners left after deleting everything", dp->addr_owner.used);
  FUZZ_ASSERT(dp->routes.used == 0 && dp->peer_addrs.used == 0, "tables not empty after deleting everything: %zu routes, %zu addresses",
              dp->routes.used, dp->peer_addrs.used);
  if (dp->wg) {
    static uint8_t ev[WG_EVENT_RING * WG_EVENT_RECORD];
    wg_drain_events(dp->wg, ev, WG_EVENT_RING);
    for (size_t i = 0; i < ns; i++) FUZZ_ASSERT(!wg_session_get(dp->wg, sess[i].local), "session %08x survived", sess[i].local);
  }
}

static struct dataplane *cached[2][2];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEAD) return 0;
  int enc = data[0] & 1, sock6 = data[1] & 1;
  struct dataplane **slot = &cached[enc][sock6];
  if (!*slot) { /* a data plane of its own: the topology of fake-dp.c would get in the way */
    struct fdp_config cfg = {.encrypted = enc, .sock6 = sock6, .mtu = 1420};
    *slot = fdp_new(&cfg);
    static uint8_t wipe[FDP_PEERS * (8 + 2 * 28)];
    size_t at = 0;
    for (int i = 0; i < FDP_PEERS; i++) {
      at += put(wipe + at, 2, 8), wr32le(wipe + at - 4, (uint32_t)i);
      uint8_t *r = wipe + at;
      at += put(r, 4, 28), r[8] = 4, r[9] = 24, r[12] = 10, r[13] = 244, r[14] = (uint8_t)(i + 1);
      r = wipe + at;
      at += put(r, 4, 28), r[8] = 6, r[9] = 64, r[12] = 0xfd, r[13] = 0x10, r[14] = 0x02, r[15] = 0x44, r[17] = (uint8_t)(i + 1);
    }
    if (dp_apply(*slot, wipe, at) != -1 || (*slot)->routes.used || (*slot)->peer_addrs.used || (*slot)->addr_owner.used) abort();
  }
  struct dataplane *dp = *slot;
  fake_reset();
  static struct rec recs[MAX_RECS];
  static uint8_t cmds[1 << 17];
  size_t n = recs_parse(data, size, HEAD, recs, MAX_RECS), len = 0;
  for (size_t i = 0; i < n && len + recs[i].len <= sizeof(cmds); i++) memcpy(cmds + len, recs[i].p, recs[i].len), len += recs[i].len;
  np = nr = ns = nw = nt = 0;
  long want = model_validate(cmds, len, enc), got = dp_apply(dp, cmds, len);
  FUZZ_ASSERT(got == want, "dp_apply -> %ld, model %ld (%zu bytes)", got, want, len);
  if (got == -1) model_apply(cmds, len, enc);
  check(dp);
  undo(dp);
  fake_reset();
  return 0;
}

static size_t fresh(struct rng *r, uint8_t *out, size_t cap) {
  if (cap < 84) return 0;
  int op = (int)(1 + rng_below(r, 8));
  uint32_t id = rng_chance(r, 12) ? rng_interesting(r, 21) : rng_below(r, 6);
  size_t n = put(out, op, (int)op_size(op));
  if (op != 4) wr32le(out + 4, id);
  int fam = rng_chance(r, 2) ? 4 : 6;
  switch (op) {
  case 1:
    out[8] = (uint8_t)fam, wr16le(out + 10, 51820 + rng_below(r, 4));
    out[12] = fam == 4 ? 198 : 0xfd, out[13] = fam == 4 ? 18 : 0, out[fam == 4 ? 15 : 27] = (uint8_t)rng_below(r, 4);
    break;
  case 3:
  case 4:
    out[8] = (uint8_t)fam, out[9] = (uint8_t)(rng_chance(r, 2) ? (fam == 4 ? 24 : 64) : rng_below(r, fam == 4 ? 33 : 129));
    out[12] = fam == 4 ? 10 : 0xfd, out[13] = fam == 4 ? 244 : 0x10, out[14] = (uint8_t)rng_below(r, 4), out[15] = (uint8_t)rng_next(r);
    break;
  case 5:
    wr32le(out + 8, rng_chance(r, 2) ? rng_below(r, 8) : (uint32_t)rng_next(r)), wr32le(out + 12, (uint32_t)rng_next(r));
    out[16] = (uint8_t)rng_below(r, 2);
    for (int i = 20; i < 84; i++) out[i] = (uint8_t)rng_next(r);
    break;
  case 6: wr32le(out + 4, rng_chance(r, 2) ? rng_below(r, 8) : (uint32_t)rng_next(r)); break;
  }
  return n;
}

static size_t tweak(struct rng *r, uint8_t *c, size_t len, size_t cap) {
  if (len < 10) return LLVMFuzzerMutate(c, len, cap);
  switch (rng_below(r, 6)) {
  case 0: c[0] = (uint8_t)rng_below(r, 10); break;
  case 1: wr16le(c + 2, rng_chance(r, 2) ? op_size(c[0] % 9) : rng_interesting(r, 16)); break;
  case 2: wr32le(c + 4, rng_interesting(r, 21) + (rng_chance(r, 2) ? (1u << 20) - 2 : 0)); break;
  case 3: c[8] = (uint8_t)(rng_chance(r, 2) ? 4 + 2 * rng_below(r, 2) : rng_next(r)); break;
  case 4: c[9] = (uint8_t)rng_interesting(r, 8); break;
  default: c[rng_below(r, (uint32_t)len)] = (uint8_t)rng_next(r);
  }
  return len;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max, unsigned seed) {
  if (seed % 6 == 0) return LLVMFuzzerMutate(data, size, max);
  return recs_mutate(data, size, max, HEAD, seed, fresh, tweak);
}

static void seeds(seed_emit_fn emit) {
  static uint8_t buf[1 << 14], store[64][84];
  struct rec recs[64];
  for (int s = 0; s < 30; s++) {
    struct rng r = {0xa99u + (uint64_t)s};
    uint8_t head[HEAD] = {(uint8_t)(s & 1), (uint8_t)(s >> 1 & 1)};
    size_t n = 1 + rng_below(&r, 40);
    for (size_t i = 0; i < n; i++) recs[i] = (struct rec){store[i], fresh(&r, store[i], 84)};
    size_t len = recs_write(buf, sizeof(buf), head, HEAD, recs, n);
    if (len) emit(buf, len);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  seeds_hook(seeds);
  return 0;
}
