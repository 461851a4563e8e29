/*
 * Encrypted mode, control side: session table, per-peer state, the event ring to TypeScript,
 * and the commands that install/retire sessions (dp_apply, under the write lock). The packet
 * path itself is in wg-data.c.
 */
#include "wg.h"
#include "dataplane.h"
#include "loop.h"
#include "blake2s.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

uint64_t wg_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

struct wg_state *wg_new(uint64_t rekey_after_ms, uint64_t reject_after_ms, const uint8_t *public_key) {
  struct wg_state *w = calloc(1, sizeof(*w));
  if (!w) return NULL;
  if (public_key) { /* mac1 key = HASH(LABEL_MAC1 || static public key), whitepaper 5.4.4 */
    uint8_t in[8 + 32];
    memcpy(in, "mac1----", 8);
    memcpy(in + 8, public_key, 32);
    blake2s(w->mac1_key, 32, NULL, 0, in, sizeof(in));
    w->mac1_ready = 1;
  }
  w->sessions = calloc(WG_SESSIONS, sizeof(*w->sessions)); /* untouched pages cost nothing */
  w->ring = calloc(WG_EVENT_RING, sizeof(*w->ring));
  pthread_mutex_init(&w->aead_lock, NULL);
  w->apply_aead = wg_aead_new(w);
  if (!w->sessions || !w->ring || !w->apply_aead) {
    wg_free(w);
    return NULL;
  }
  w->rekey_after_ms = rekey_after_ms;
  w->reject_after_ms = reject_after_ms;
  pthread_mutex_init(&w->ev_lock, NULL);
  return w;
}

static void wipe_session(struct wg_session *s);

struct aead *wg_aead_new(struct wg_state *w) {
  struct aead *a = aead_new();
  if (!a) return NULL;
  pthread_mutex_lock(&w->aead_lock);
  int i = 0;
  while (i < WG_MAX_AEADS && w->aeads[i]) i++;
  if (i < WG_MAX_AEADS) w->aeads[i] = a;
  pthread_mutex_unlock(&w->aead_lock);
  if (i == WG_MAX_AEADS) {
    aead_free(a);
    return NULL;
  }
  return a;
}

void wg_aead_free(struct wg_state *w, struct aead *a) {
  if (!a) return;
  pthread_mutex_lock(&w->aead_lock);
  for (int i = 0; i < WG_MAX_AEADS; i++)
    if (w->aeads[i] == a) w->aeads[i] = NULL;
  pthread_mutex_unlock(&w->aead_lock);
  aead_free(a); /* EVP_CIPHER_CTX_free cleanses what it held */
}

/* Retires a live session: its peer forgets it, its keys are wiped, here and from every cipher
 * context that loaded them (the caller holds the write lock: no thread is using one). */
static void drop_session(struct wg_state *w, struct wg_session *s) {
  uint32_t slot = (uint32_t)(s - w->sessions);
  struct wg_peer *wp = wg_peer_get(w, s->peer);
  if (wp) {
    if (atomic_load(&wp->cur) == slot + 1) atomic_store(&wp->cur, 0);
    if (atomic_load(&wp->next) == slot + 1) atomic_store(&wp->next, 0);
    if (wp->live_sessions) wp->live_sessions--;
  }
  pthread_mutex_lock(&w->aead_lock);
  for (int i = 0; i < WG_MAX_AEADS; i++) aead_forget(w->aeads[i], s->key_id);
  pthread_mutex_unlock(&w->aead_lock);
  wipe_session(s);
}

static void wipe_session(struct wg_session *s) {
  if (s->live) pthread_spin_destroy(&s->replay_lock);
  /* volatile-free wipe that the compiler may not drop: explicit_bzero */
  explicit_bzero(s, sizeof(*s));
}

void wg_free(struct wg_state *w) {
  if (!w) return;
  if (w->sessions) {
    for (uint32_t i = 0; i < WG_SESSIONS; i++)
      if (w->sessions[i].live) wipe_session(&w->sessions[i]);
    free(w->sessions);
  }
  for (uint32_t i = 0; i < w->peers_cap; i++) {
    struct wg_peer *wp = w->peers[i];
    if (!wp) continue;
    free(wp->stage);
    pthread_mutex_destroy(&wp->stage_lock);
    pthread_mutex_destroy(&wp->ep_lock);
    free(wp);
  }
  free(w->peers);
  free(w->ring);
  wg_aead_free(w, w->apply_aead);
  pthread_mutex_destroy(&w->aead_lock);
  free(w);
}

int wg_peer_reserve(struct wg_state *w, uint32_t id) {
  if (id >= w->peers_cap) {
    uint32_t cap = w->peers_cap ? w->peers_cap : 16;
    while (cap <= id) cap *= 2;
    struct wg_peer **n = realloc(w->peers, cap * sizeof(*n));
    if (!n) return -1;
    memset(n + w->peers_cap, 0, (cap - w->peers_cap) * sizeof(*n));
    w->peers = n;
    w->peers_cap = cap;
  }
  if (w->peers[id]) return 0;
  struct wg_peer *wp = calloc(1, sizeof(*wp));
  if (!wp) return -1;
  pthread_mutex_init(&wp->stage_lock, NULL);
  pthread_mutex_init(&wp->ep_lock, NULL);
  w->peers[id] = wp;
  return 0;
}

/* ---- events ------------------------------------------------------------------------------ */

int wg_push_event(struct wg_state *w, const struct wg_event *e, uint64_t *drop_counter) {
  int wake = 0;
  pthread_mutex_lock(&w->ev_lock);
  if (w->ev_count == WG_EVENT_RING) {
    pthread_mutex_unlock(&w->ev_lock);
    if (drop_counter) __atomic_store_n(drop_counter, *drop_counter + 1, __ATOMIC_RELAXED);
    return -1;
  }
  w->ring[(w->ev_head + w->ev_count) % WG_EVENT_RING] = *e;
  w->ev_count++;
  if (!w->ev_notified) wake = w->ev_notified = 1;
  pthread_mutex_unlock(&w->ev_lock);
  if (wake && w->notify) w->notify(w->notify_ctx);
  return 0;
}

/* Record: [kind u8][family u8][port u16][peer u32][addr 16][len u16][rsv u16][data 148], LE. */
uint32_t wg_drain_events(struct wg_state *w, uint8_t *out, uint32_t max) {
  uint32_t n = 0;
  pthread_mutex_lock(&w->ev_lock);
  while (n < max && w->ev_count) {
    const struct wg_event *e = &w->ring[w->ev_head];
    uint8_t *r = out + (size_t)n * WG_EVENT_RECORD;
    memset(r, 0, WG_EVENT_RECORD);
    r[0] = e->kind;
    r[1] = e->family;
    r[2] = (uint8_t)e->port, r[3] = (uint8_t)(e->port >> 8);
    for (int i = 0; i < 4; i++) r[4 + i] = (uint8_t)(e->peer >> (8 * i));
    memcpy(r + 8, e->addr, 16);
    r[24] = (uint8_t)e->len, r[25] = (uint8_t)(e->len >> 8);
    memcpy(r + 28, e->data, e->len);
    w->ev_head = (w->ev_head + 1) % WG_EVENT_RING;
    w->ev_count--;
    n++;
  }
  if (!w->ev_count) w->ev_notified = 0;
  pthread_mutex_unlock(&w->ev_lock);
  return n;
}

void wg_request_handshake(struct wg_state *w, uint32_t peer, int reason, uint64_t now, uint64_t *sent_counter,
                          uint64_t *drop_counter) {
  struct wg_peer *wp = wg_peer_get(w, peer);
  if (!wp) return;
  uint64_t last = atomic_load_explicit(&wp->need_requested_ms, memory_order_relaxed);
  if (last && wg_age_ms(now, last) < WG_HANDSHAKE_REQUEST_MS) return;
  if (!atomic_compare_exchange_strong(&wp->need_requested_ms, &last, now)) return; /* another thread did */
  struct wg_event e = {.kind = WG_EV_NEED_HANDSHAKE, .peer = peer, .len = 0};
  e.port = (uint16_t)reason;
  if (wg_push_event(w, &e, drop_counter) == 0 && sent_counter) __atomic_store_n(sent_counter, *sent_counter + 1, __ATOMIC_RELAXED);
}

/* ---- sending from the control thread (staged packets, keepalives) ------------------------- */

static int send_sealed(struct dataplane *dp, struct aead *a, uint32_t peer, struct wg_session *s, const uint8_t *pkt,
                       size_t len, uint64_t *c, int ok, int err) {
  uint8_t buf[WG_HEADER + WG_STAGE_BYTES + WG_TAIL_BYTES];
  uint8_t *out;
  size_t out_len;
  struct sockaddr_storage ep;
  if (len > WG_STAGE_BYTES || !s->live) return 0;
  if (len) memcpy(buf + WG_HEADER, pkt, len);
  socklen_t el = wg_peer_endpoint(dp, peer, &ep);
  if (!el || wg_seal_for_control(dp, a, s, buf + WG_HEADER, len, &out, &out_len) < 0) {
    cadd(c, err, 1);
    return 0;
  }
  ssize_t r = sendto(dp_send_fd(&dp->q[0], ep.ss_family), out, out_len, MSG_DONTWAIT, (struct sockaddr *)&ep, el);
  cadd(c, r == (ssize_t)out_len ? ok : err, 1);
  if (r == (ssize_t)out_len) peer_count(dp->q[0].pcs, 0, peer, PC_TX_PACKETS, 1, out_len);
  else peer_drop(dp->q[0].pcs, 0, peer, PC_OUT_DROP_SEND_ERROR, 1);
  struct wg_peer *wp = wg_peer_get(dp->wg, peer);
  uint64_t now = wg_now_ms();
  atomic_store(&wp->last_tx_any_ms, now);
  if (len) atomic_store(&wp->last_tx_data_ms, now);
  return r == (ssize_t)out_len;
}

int wg_flush_staged(struct dataplane *dp, struct aead *a, uint32_t peer, struct wg_session *s, int keepalive_if_none,
                    uint64_t *c, int ok, int err) {
  struct wg_peer *wp = wg_peer_get(dp->wg, peer);
  int sent = 0;
  if (!wp) return 0;
  pthread_mutex_lock(&wp->stage_lock);
  int n = wp->stage_n;
  for (int i = 0; i < n; i++) sent += send_sealed(dp, a, peer, s, wp->stage + (size_t)i * WG_STAGE_BYTES, wp->stage_len[i], c, ok, err);
  wp->stage_n = 0;
  pthread_mutex_unlock(&wp->stage_lock);
  if (n == 0 && keepalive_if_none) send_sealed(dp, a, peer, s, NULL, 0, c, ok, err);
  return sent;
}

/* ---- commands ----------------------------------------------------------------------------- */

/* op 5: peer u32 @4, local u32 @8, remote u32 @12, role u8 @16 (1 = current: we initiated;
 * 0 = next: we responded), send key @20, receive key @52. */
int wg_install_session(struct dataplane *dp, const uint8_t *r) {
  struct wg_state *w = dp->wg;
  uint32_t peer = rd32(r + 4), local = rd32(r + 8);
  if (wg_peer_reserve(w, peer) < 0) return -1;
  uint32_t slot = local & WG_SESSION_MASK;
  struct wg_session *s = &w->sessions[slot];
  if (s->live) drop_session(w, s);
  s->live = 1;
  s->initiator = r[16] == 1;
  s->peer = peer;
  s->local_index = local;
  s->remote_index = rd32(r + 12);
  s->key_id = ++w->next_key_id;
  s->created_ms = wg_now_ms();
  memcpy(s->send_key, r + 20, 32);
  memcpy(s->recv_key, r + 52, 32);
  atomic_store(&s->send_counter, 0);
  memset(&s->replay, 0, sizeof(s->replay));
  pthread_spin_init(&s->replay_lock, PTHREAD_PROCESS_PRIVATE);
  struct wg_peer *wp = w->peers[peer];
  wp->live_sessions++;
  atomic_store(&wp->need_requested_ms, 0);
  if (s->initiator) {
    atomic_store(&wp->cur, slot + 1);
    atomic_store(&wp->next, 0);
    /* confirm the session to the responder */
    wg_flush_staged(dp, w->apply_aead, peer, s, 1, dp->q[0].counters, TC_CTL_WG_SENT_PACKETS, TC_CTL_WG_SEND_ERRORS);
  } else { /* sent on once the initiator's first packet confirms it (wg_open_datagram flushes then) */
    atomic_store(&wp->next, slot + 1);
  }
  return 0;
}

void wg_retire_session(struct dataplane *dp, uint32_t local_index) {
  struct wg_session *s = wg_session_get(dp->wg, local_index);
  if (s) drop_session(dp->wg, s);
}

void wg_send_keepalive(struct dataplane *dp, uint32_t peer) {
  struct wg_peer *wp = wg_peer_get(dp->wg, peer);
  if (!wp || !atomic_load(&wp->cur) || !peer_get(dp, peer)) return;
  send_sealed(dp, dp->wg->apply_aead, peer, &dp->wg->sessions[atomic_load(&wp->cur) - 1], NULL, 0, dp->q[0].counters,
              TC_CTL_WG_SENT_PACKETS, TC_CTL_WG_SEND_ERRORS);
}

void wg_clear_staged(struct dataplane *dp, uint32_t peer) {
  struct wg_peer *wp = wg_peer_get(dp->wg, peer);
  if (!wp) return;
  pthread_mutex_lock(&wp->stage_lock);
  wp->stage_n = 0;
  pthread_mutex_unlock(&wp->stage_lock);
}

void wg_del_peer(struct dataplane *dp, uint32_t peer) {
  struct wg_state *w = dp->wg;
  struct wg_peer *wp = wg_peer_get(w, peer);
  if (!wp) return;
  /* normally TypeScript retired them all already: then the table is not scanned at all */
  for (uint32_t i = 0; i < WG_SESSIONS && wp->live_sessions; i++)
    if (w->sessions[i].live && w->sessions[i].peer == peer) drop_session(w, &w->sessions[i]);
  wg_clear_staged(dp, peer);
  atomic_store(&wp->cur, 0);
  atomic_store(&wp->next, 0);
}
