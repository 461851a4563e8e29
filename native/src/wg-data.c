/*
 * Encrypted mode, packet path: seal (outbound) and open (inbound) one WireGuard transport
 * message in place. Called by outbound.c / inbound.c with the data plane's read lock held;
 * no allocation (except a peer's staging area, once), no JavaScript, drops are verdicts.
 *
 *   outbound: peer's current session usable? -> counter++ -> pad to 16 -> header into the
 *             headroom -> ChaCha20-Poly1305 in place, tag after -> rekey due? ask TypeScript
 *             | no usable session -> stage the packet (bounded) and ask for a handshake
 *   inbound:  type 1-3 -> event ring (TypeScript answers) | type 4 -> receiver index -> session
 *             -> age -> decrypt -> replay window -> promote `next` -> roaming -> keepalive?
 *             -> inner IP packet -> inner source routed to this very peer (cryptokey routing)
 *             | unknown index from a peer's address -> reported to TypeScript (rate-limited)
 */
#include "wg.h"
#include "dataplane.h"
#include "loop.h"
#include "packet.h"
#include "blake2s.h"
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#define WG_KEEPALIVE_TIMEOUT_MS 10000
#define WG_REKEY_TIMEOUT_MS 5000

static inline uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static inline void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void wr64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

socklen_t wg_peer_endpoint(struct dataplane *dp, uint32_t id, struct sockaddr_storage *out) {
  struct dp_peer *p = peer_get(dp, id);
  struct wg_peer *wp = wg_peer_get(dp->wg, id);
  if (!p) return 0;
  if (!wp) { /* never roamed: nothing can be writing */
    memcpy(out, &p->ep, sizeof(*out));
    return p->ep_len;
  }
  for (;;) {
    uint32_t s1 = atomic_load_explicit(&wp->ep_seq, memory_order_acquire);
    if (s1 & 1) continue;
    memcpy(out, &p->ep, sizeof(*out));
    socklen_t l = p->ep_len;
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&wp->ep_seq, memory_order_relaxed) == s1) return l;
  }
}

static int same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

static void roam(struct dataplane *dp, uint32_t id, const struct sockaddr_storage *from, uint64_t *c) {
  struct dp_peer *p = peer_get(dp, id);
  struct wg_peer *wp = wg_peer_get(dp->wg, id);
  if (!p || !wp || same_endpoint(&p->ep, from)) return; /* racy read is fine: only a hint */
  pthread_mutex_lock(&wp->ep_lock);
  atomic_fetch_add_explicit(&wp->ep_seq, 1, memory_order_release);
  atomic_thread_fence(memory_order_release);
  memcpy(&p->ep, from, sizeof(p->ep));
  p->ep_len = from->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  atomic_fetch_add_explicit(&wp->ep_seq, 1, memory_order_release);
  pthread_mutex_unlock(&wp->ep_lock);
  cadd(c, TC_IN_WG_ROAMED, 1);
}

static int session_usable(struct wg_state *w, struct wg_session *s, uint64_t now) {
  return s->live && wg_age_ms(now, s->created_ms) < w->reject_after_ms &&
         atomic_load_explicit(&s->send_counter, memory_order_relaxed) < WG_REJECT_AFTER_MESSAGES;
}

/* Pads to 16 (never past the MTU), counts, writes the header in front of p1 and seals
 * [p1][p2][padding at tail] in place with session s; the tag follows the padding at tail.
 * Returns the counter used (UINT64_MAX when the session is spent) and the bytes used at tail. */
static uint64_t seal_with(struct wg_session *s, struct aead *a, uint8_t *p1, size_t l1, uint8_t *p2, size_t l2,
                          uint8_t *tail, size_t mtu, size_t *tail_len) {
  uint64_t ctr = atomic_fetch_add_explicit(&s->send_counter, 1, memory_order_relaxed);
  if (ctr >= WG_REJECT_AFTER_MESSAGES) return UINT64_MAX;
  size_t len = l1 + l2;
  size_t padded = (len + 15) & ~(size_t)15;
  if (padded > mtu) padded = len > mtu ? len : mtu;
  size_t pad = padded - len;
  memset(tail, 0, pad);
  uint8_t *h = p1 - WG_HEADER;
  h[0] = 4, h[1] = h[2] = h[3] = 0;
  wr32(h + 4, s->remote_index);
  wr64(h + 8, ctr);
  if (aead_seal_parts(a, s->key_id, s->send_key, ctr, p1, l1, p2, l2, tail, pad, tail + pad) != 0) return UINT64_MAX;
  *tail_len = pad + AEAD_TAG_BYTES;
  return ctr;
}

#define STAGE_RETRY (-1) /* the current session changed meanwhile: try to seal again */

/* Stages a packet for a peer whose current session (slot + 1 = cur_seen) is unusable. Under the
 * stage lock, cur is read again: an inbound thread that confirms a responder's session publishes
 * cur first and then flushes the stage under this lock, so a packet either is staged before that
 * flush (and goes out with it) or sees the new session here and is sealed with it. */
static int stage(struct wg_peer *wp, uint32_t cur_seen, const uint8_t *p1, size_t l1, const uint8_t *p2, size_t l2) {
  int v = WG_OUT_STAGE_FULL;
  if (l1 + l2 == 0 || l1 + l2 > WG_STAGE_BYTES) return v;
  pthread_mutex_lock(&wp->stage_lock);
  if (atomic_load_explicit(&wp->cur, memory_order_acquire) != cur_seen) {
    pthread_mutex_unlock(&wp->stage_lock);
    return STAGE_RETRY;
  }
  if (!wp->stage) wp->stage = malloc((size_t)WG_STAGE_PER_PEER * WG_STAGE_BYTES); /* once per peer */
  if (wp->stage && wp->stage_n < WG_STAGE_PER_PEER) {
    uint8_t *to = wp->stage + (size_t)wp->stage_n * WG_STAGE_BYTES;
    memcpy(to, p1, l1);
    if (l2) memcpy(to + l1, p2, l2);
    wp->stage_len[wp->stage_n++] = (uint16_t)(l1 + l2);
    v = WG_OUT_STAGED;
  }
  pthread_mutex_unlock(&wp->stage_lock);
  return v;
}

enum wg_out_verdict wg_seal_parts(struct dataplane *dp, struct aead *a, uint32_t peer, uint8_t *p1, size_t l1,
                                  uint8_t *p2, size_t l2, uint8_t *tail, size_t *tail_len, uint64_t now, uint64_t *c) {
  struct wg_state *w = dp->wg;
  struct wg_peer *wp = wg_peer_get(w, peer);
  uint64_t *req = c ? &c[TC_OUT_WG_HANDSHAKE_REQUESTS] : NULL, *full = c ? &c[TC_OUT_DROP_EVENT_QUEUE_FULL] : NULL;
  if (!wp) return WG_OUT_STAGE_FULL;
  for (int attempt = 0;; attempt++) {
    uint32_t cur = atomic_load_explicit(&wp->cur, memory_order_acquire);
    struct wg_session *s = cur ? &w->sessions[cur - 1] : NULL;
    if (s && session_usable(w, s, now)) {
      uint64_t ctr = seal_with(s, a, p1, l1, p2, l2, tail, (size_t)dp->opt.mtu, tail_len);
      if (ctr != UINT64_MAX) {
        if (s->initiator && (wg_age_ms(now, s->created_ms) >= w->rekey_after_ms || ctr >= WG_REKEY_AFTER_MESSAGES))
          wg_request_handshake(w, peer, WG_NEED_REKEY, now, req, full);
        atomic_store_explicit(&wp->last_tx_any_ms, now, memory_order_relaxed);
        if (l1 + l2) atomic_store_explicit(&wp->last_tx_data_ms, now, memory_order_relaxed);
        return WG_OUT_SEND;
      }
    }
    int v = stage(wp, cur, p1, l1, p2, l2);
    if (v == STAGE_RETRY && attempt < 2) continue; /* cur changes once per confirmation: a bound, not a spin */
    if (v == STAGE_RETRY) v = WG_OUT_STAGE_FULL;
    wg_request_handshake(w, peer, WG_NEED_NO_SESSION, now, req, full);
    return (enum wg_out_verdict)v;
  }
}

enum wg_out_verdict wg_seal_packet(struct dataplane *dp, struct aead *a, uint32_t peer, uint8_t *pkt, size_t len,
                                   uint8_t **out, size_t *out_len, uint64_t now, uint64_t *c) {
  size_t tail_len = 0;
  enum wg_out_verdict v = wg_seal_parts(dp, a, peer, pkt, len, NULL, 0, pkt + len, &tail_len, now, c);
  *out = pkt - WG_HEADER;
  *out_len = WG_HEADER + len + tail_len;
  return v;
}

/* Used by wg.c to send from the control thread with a known-good session. */
int wg_seal_for_control(struct dataplane *dp, struct aead *a, struct wg_session *s, uint8_t *pkt, size_t len,
                        uint8_t **out, size_t *out_len) {
  size_t tail_len;
  if (seal_with(s, a, pkt, len, NULL, 0, pkt + len, (size_t)dp->opt.mtu, &tail_len) == UINT64_MAX) return -1;
  *out = pkt - WG_HEADER;
  *out_len = WG_HEADER + len + tail_len;
  return 0;
}

void wg_count_inbound(uint64_t *c, const uint64_t counts[WG_IN_VERDICTS]) {
  static const int counter_of[WG_IN_VERDICTS] = {
      [WG_IN_DELIVER] = -1, /* counted when written to the TUN */
      [WG_IN_HANDSHAKE] = TC_IN_WG_HANDSHAKE_MESSAGES,
      [WG_IN_HANDSHAKE_DROPPED] = -1, /* counted where the ring refused it */
      [WG_IN_BAD_MAC1] = TC_IN_DROP_HANDSHAKE_MAC1,
      [WG_IN_COOKIE_STRANGER] = TC_IN_DROP_COOKIE_REPLY_STRANGER,
      [WG_IN_KEEPALIVE] = TC_IN_WG_KEEPALIVES,
      [WG_IN_NOT_WIREGUARD] = TC_IN_DROP_PLAINTEXT,
      [WG_IN_UNKNOWN_INDEX] = TC_IN_DROP_UNKNOWN_INDEX,
      [WG_IN_EXPIRED] = TC_IN_DROP_EXPIRED_SESSION,
      [WG_IN_DECRYPT] = TC_IN_DROP_DECRYPT,
      [WG_IN_REPLAY] = TC_IN_DROP_REPLAY,
      [WG_IN_MALFORMED] = TC_IN_DROP_MALFORMED,
      [WG_IN_OVERSIZED] = TC_IN_DROP_OVERSIZED,
      [WG_IN_CRYPTOKEY] = TC_IN_DROP_CRYPTOKEY_ROUTING,
      [WG_IN_BAD_IP_CSUM] = TC_IN_DROP_IP_HEADER_CHECKSUM,
  };
  for (int v = 0; v < WG_IN_VERDICTS; v++)
    if (counter_of[v] >= 0) cadd(c, counter_of[v], counts[v]);
}

void wg_count_peer_drop(struct dp_queue *q, enum wg_in_verdict v, uint32_t peer, const struct sockaddr_storage *from) {
  static const int8_t slot_of[WG_IN_VERDICTS] = {
      [WG_IN_DELIVER] = -1, [WG_IN_HANDSHAKE] = -1, [WG_IN_HANDSHAKE_DROPPED] = -1,
      [WG_IN_COOKIE_STRANGER] = -1, /* from no peer's address, by definition */
      [WG_IN_KEEPALIVE] = -1,
      [WG_IN_BAD_MAC1] = PC_IN_DROP_HANDSHAKE_MAC1,
      [WG_IN_NOT_WIREGUARD] = PC_IN_DROP_PLAINTEXT,
      [WG_IN_UNKNOWN_INDEX] = PC_IN_DROP_UNKNOWN_INDEX,
      [WG_IN_EXPIRED] = PC_IN_DROP_EXPIRED_SESSION,
      [WG_IN_DECRYPT] = PC_IN_DROP_DECRYPT,
      [WG_IN_REPLAY] = PC_IN_DROP_REPLAY,
      [WG_IN_MALFORMED] = PC_IN_DROP_MALFORMED,
      [WG_IN_OVERSIZED] = PC_IN_DROP_OVERSIZED,
      [WG_IN_CRYPTOKEY] = PC_IN_DROP_CRYPTOKEY_ROUTING,
      [WG_IN_BAD_IP_CSUM] = PC_IN_DROP_IP_HEADER_CHECKSUM,
  };
  if ((unsigned)v >= WG_IN_VERDICTS || slot_of[v] < 0 || !q->pcs) return;
  if (peer == UINT32_MAX) peer = outer_owner(q->dp, outer_source(from));
  peer_drop(q->pcs, q->index, peer, slot_of[v], 1);
}

static size_t inner_length(const uint8_t *b, size_t n) {
  if (n >= 20 && b[0] >> 4 == 4) return (size_t)b[2] << 8 | b[3];
  if (n >= 40 && b[0] >> 4 == 6) return 40 + ((size_t)b[4] << 8 | b[5]);
  return 0;
}

/* Is mac1 of a handshake message to us (initiation or response: mac1 then mac2 end it) ours?
 * Anyone can send one with a valid mac1 (our public key is public), but not without knowing
 * it: the ring to TypeScript is not filled by random bytes or by someone scanning for ports. */
static int mac1_ok(const struct wg_state *w, const uint8_t *b, size_t n) {
  uint8_t m[16];
  if (!w->mac1_ready || n < 32) return 0;
  blake2s(m, sizeof(m), w->mac1_key, sizeof(w->mac1_key), b, n - 32);
  uint8_t diff = 0;
  for (int i = 0; i < 16; i++) diff |= (uint8_t)(m[i] ^ b[n - 32 + i]);
  return diff == 0;
}

static enum wg_in_verdict handshake_message(struct dataplane *dp, const struct sockaddr_storage *from,
                                            const uint8_t *b, size_t n, uint64_t *c) {
  /* a cookie reply carries no mac1 (it is sealed to our last mac1, which TypeScript holds): it
   * is queued only from a peer's address, where our initiations go */
  if (b[0] == 3 ? !outer_known(dp, outer_source(from)) : !mac1_ok(dp->wg, b, n))
    return b[0] == 3 ? WG_IN_COOKIE_STRANGER : WG_IN_BAD_MAC1;
  struct wg_event e = {.kind = WG_EV_HANDSHAKE, .peer = UINT32_MAX, .len = (uint16_t)n};
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *s = (const void *)from;
    e.family = 4;
    e.port = ntohs(s->sin_port);
    memcpy(e.addr, &s->sin_addr, 4);
  } else {
    const struct sockaddr_in6 *s = (const void *)from;
    int mapped = IN6_IS_ADDR_V4MAPPED(&s->sin6_addr);
    e.family = mapped ? 4 : 6;
    e.port = ntohs(s->sin6_port);
    memcpy(e.addr, mapped ? s->sin6_addr.s6_addr + 12 : s->sin6_addr.s6_addr, mapped ? 4 : 16);
  }
  memcpy(e.data, b, n);
  return wg_push_event(dp->wg, &e, &c[TC_IN_DROP_HANDSHAKE_QUEUE_FULL]) == 0 ? WG_IN_HANDSHAKE : WG_IN_HANDSHAKE_DROPPED;
}

/* Transport data under an index we do not know, from the address of one of our peers: that peer
 * holds a session we no longer have (we restarted, or retired it). TypeScript may answer with a
 * handshake initiation to the peer at its known endpoint -- never a reply to this datagram, whose
 * source may be forged. Strangers' addresses are never reported; known ones at most once per
 * WG_UNKNOWN_INDEX_MS per source (hashed into WG_UNKNOWN_INDEX_SLOTS), so a flood costs a trie
 * lookup and a hash per datagram and at most 1024 events a second. */
static void report_unknown_index(struct dataplane *dp, const struct sockaddr_storage *from, uint64_t now, uint64_t *c) {
  struct outer o = outer_source(from);
  if (!outer_known(dp, o)) return;
  uint16_t port = ntohs(from->ss_family == AF_INET ? ((const struct sockaddr_in *)from)->sin_port
                                                   : ((const struct sockaddr_in6 *)from)->sin6_port);
  size_t alen = o.family == 4 ? 4 : 16;
  uint32_t h = 2166136261u; /* FNV-1a over address and port */
  for (size_t i = 0; i < alen; i++) h = (h ^ o.addr[i]) * 16777619u;
  h = ((h ^ (port & 0xff)) * 16777619u ^ (uint32_t)(port >> 8)) * 16777619u;
  _Atomic uint64_t *slot = &dp->wg->unknown_index_ms[h % WG_UNKNOWN_INDEX_SLOTS];
  uint64_t last = atomic_load_explicit(slot, memory_order_relaxed);
  if (last && now - last < WG_UNKNOWN_INDEX_MS) return;
  if (!atomic_compare_exchange_strong(slot, &last, now)) return; /* another thread reports it */
  struct wg_event e = {.kind = WG_EV_UNKNOWN_INDEX, .family = (uint8_t)o.family, .port = port, .peer = UINT32_MAX};
  memcpy(e.addr, o.addr, alen);
  if (wg_push_event(dp->wg, &e, &c[TC_IN_DROP_HANDSHAKE_QUEUE_FULL]) == 0) cadd(c, TC_IN_WG_UNKNOWN_INDEX_REPORTS, 1);
}

enum wg_in_verdict wg_open_datagram(struct dataplane *dp, struct aead *a, const struct sockaddr_storage *from,
                                    uint8_t **pkt, size_t *len, uint64_t now, uint64_t *c, uint32_t *peer_out) {
  struct wg_state *w = dp->wg;
  uint8_t *b = *pkt;
  size_t n = *len;
  *peer_out = UINT32_MAX;
  if (n < 4 || b[1] || b[2] || b[3]) return WG_IN_NOT_WIREGUARD;
  switch (b[0]) {
  case 1: return n == 148 ? handshake_message(dp, from, b, n, c) : WG_IN_NOT_WIREGUARD;
  case 2: return n == 92 ? handshake_message(dp, from, b, n, c) : WG_IN_NOT_WIREGUARD;
  case 3: return n == 64 ? handshake_message(dp, from, b, n, c) : WG_IN_NOT_WIREGUARD;
  case 4: break;
  default: return WG_IN_NOT_WIREGUARD;
  }
  if (n < WG_HEADER + AEAD_TAG_BYTES) return WG_IN_MALFORMED;
  uint32_t idx = rd32(b + 4);
  struct wg_session *s = wg_session_get(w, idx);
  if (!s) report_unknown_index(dp, from, now, c);
  if (!s || !peer_get(dp, s->peer)) return WG_IN_UNKNOWN_INDEX;
  *peer_out = s->peer; /* drops from here on are pinned on the session's peer */
  if (wg_age_ms(now, s->created_ms) >= w->reject_after_ms) return WG_IN_EXPIRED;
  uint64_t ctr = rd64(b + 8);
  if (ctr >= WG_REJECT_AFTER_MESSAGES) return WG_IN_REPLAY;
  size_t clen = n - WG_HEADER - AEAD_TAG_BYTES;
  uint8_t *p = b + WG_HEADER;
  if (aead_open(a, s->key_id, s->recv_key, ctr, p, clen) != 0) return WG_IN_DECRYPT;
  pthread_spin_lock(&s->replay_lock);
  int fresh = replay_accept(&s->replay, ctr);
  pthread_spin_unlock(&s->replay_lock);
  if (!fresh) return WG_IN_REPLAY;

  /* authenticated from here on */
  uint32_t peer = s->peer, slot = idx & WG_SESSION_MASK;
  struct wg_peer *wp = wg_peer_get(w, peer);
  uint32_t expect = slot + 1;
  if (atomic_load_explicit(&wp->next, memory_order_relaxed) == expect &&
      atomic_compare_exchange_strong(&wp->next, &expect, 0)) {
    /* the responder's session is confirmed: publish it, then send what waited for it (stage()
     * reads cur again under the stage lock, so nothing staged meanwhile is left behind) */
    atomic_store_explicit(&wp->cur, slot + 1, memory_order_release);
    wg_flush_staged(dp, a, peer, s, 0, c, TC_IN_WG_STAGED_SENT, TC_IN_WG_STAGED_SEND_ERRORS);
  }
  atomic_store_explicit(&wp->last_rx_any_ms, now, memory_order_relaxed);
  roam(dp, peer, from, c);
  uint64_t rekey_at = w->reject_after_ms > WG_KEEPALIVE_TIMEOUT_MS + WG_REKEY_TIMEOUT_MS
                          ? w->reject_after_ms - WG_KEEPALIVE_TIMEOUT_MS - WG_REKEY_TIMEOUT_MS
                          : w->rekey_after_ms;
  if (s->initiator && wg_age_ms(now, s->created_ms) >= rekey_at)
    wg_request_handshake(w, peer, WG_NEED_REKEY, now, &c[TC_IN_WG_HANDSHAKE_REQUESTS], &c[TC_IN_DROP_HANDSHAKE_QUEUE_FULL]);
  if (clen == 0) return WG_IN_KEEPALIVE;

  size_t iplen = inner_length(p, clen);
  struct ip_view v;
  if (!iplen || iplen > clen || ip_parse(p, iplen, &v) != 0) return WG_IN_MALFORMED;
  if ((int)iplen > dp->opt.mtu) return WG_IN_OVERSIZED;
  if (!ip_header_checksum_ok(p, &v)) return WG_IN_BAD_IP_CSUM;
  if (rt_lookup(&dp->routes, v.family, v.src) != peer) return WG_IN_CRYPTOKEY;
  atomic_store_explicit(&wp->last_rx_data_ms, now, memory_order_relaxed);
  *pkt = p;
  *len = iplen;
  return WG_IN_DELIVER;
}
