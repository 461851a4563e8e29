/*
 * Encrypted mode: WireGuard transport data in the packet loop. TypeScript does the handshake
 * (src/wireguard/) and installs the resulting keys here; this side seals, opens, checks replay
 * and cryptokey routing, and reports back only what TypeScript must act on.
 *
 *   sessions   a table indexed by the low bits of our receiver index (TypeScript picks indices
 *              so that each live session owns one slot); per peer, `cur` (sending) and `next`
 *              (a responder's session, promoted to cur by the first packet received on it).
 *              Older sessions stay receivable until retired, so a rekey drops nothing.
 *   staging    outbound packets for a peer with no usable session wait in a small per-peer
 *              queue (bounded) and go out when a session is installed
 *   events     handshake messages received (types 1-3, with the source), "peer N needs a
 *              handshake" and "transport data under an unknown index from a peer's address"
 *              (rate-limited per source) go into a fixed ring; TypeScript is woken once per batch
 *              and drains it
 *
 * Locking: tables change only in dp_apply under the data plane's write lock; packet threads
 * hold the read lock per batch. Per-session replay windows have their own spinlock; a peer's
 * endpoint (roaming) is published with a seqlock.
 */
#ifndef TULLE_WG_H
#define TULLE_WG_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include "aead.h"
#include "replay.h"

#define WG_SESSION_BITS 16
#define WG_SESSIONS (1u << WG_SESSION_BITS)
#define WG_SESSION_MASK (WG_SESSIONS - 1)
#define WG_STAGE_PER_PEER 32
#define WG_STAGE_BYTES 2048 /* staged packets larger than this are dropped (MTU is far below) */
#define WG_EVENT_RING 1024
#define WG_EVENT_DATA 148
#define WG_EVENT_RECORD 176 /* bytes per event handed to TypeScript, see wg_drain_events */
#define WG_HEADER 16
#define WG_TAIL_BYTES 32 /* padding (< 16) + tag (16): room wg_seal_parts needs at `tail` */
#define WG_REKEY_AFTER_MESSAGES (1ull << 60)
#define WG_HANDSHAKE_REQUEST_MS 250 /* at most one "needs handshake" per peer per this */
#define WG_MAX_AEADS (3 * 16 + 1) /* cipher contexts: per queue 2 threads + offload's outbound, + apply's */
#define WG_UNKNOWN_INDEX_SLOTS 256 /* "unknown index" reports: sources hashed into this many... */
#define WG_UNKNOWN_INDEX_MS 250    /* ...each reported at most once per this (<= 1024 events/s) */

enum wg_event_kind { WG_EV_HANDSHAKE = 1, WG_EV_NEED_HANDSHAKE = 2, WG_EV_UNKNOWN_INDEX = 3 };
enum wg_need_reason { WG_NEED_NO_SESSION = 0, WG_NEED_REKEY = 1 };

struct wg_session {
  int live;
  int initiator;
  uint32_t peer;
  uint32_t local_index, remote_index;
  uint64_t key_id; /* unique per install: the per-thread AEAD reloads a key only when it changes */
  uint64_t created_ms;
  uint8_t send_key[32], recv_key[32];
  _Atomic uint64_t send_counter;
  pthread_spinlock_t replay_lock;
  struct replay replay;
};

struct wg_peer {
  _Atomic uint32_t cur, next; /* session slot + 1; 0 = none */
  _Atomic uint64_t last_tx_data_ms, last_rx_data_ms, last_rx_any_ms, last_tx_any_ms;
  _Atomic uint64_t need_requested_ms;
  uint32_t live_sessions; /* installed and not yet retired (changed under the write lock only) */
  pthread_mutex_t stage_lock;
  int stage_n;
  uint16_t stage_len[WG_STAGE_PER_PEER];
  uint8_t *stage; /* WG_STAGE_PER_PEER * WG_STAGE_BYTES, allocated on first use */
  _Atomic uint32_t ep_seq; /* seqlock over the dp_peer's ep/addr during roaming */
  pthread_mutex_t ep_lock;
};

struct wg_event {
  uint8_t kind, family;
  uint16_t port;
  uint32_t peer;
  uint8_t addr[16];
  uint16_t len;
  uint8_t data[WG_EVENT_DATA];
};

struct wg_state {
  struct wg_session *sessions; /* WG_SESSIONS */
  struct wg_peer **peers; /* by peer id; each allocated once (its locks never move) */
  uint32_t peers_cap;
  uint64_t next_key_id;
  uint64_t rekey_after_ms, reject_after_ms;
  int mac1_ready;
  uint8_t mac1_key[32]; /* HASH("mac1----" || our static public key) */
  struct aead *apply_aead; /* for packets sent from dp_apply (staged, keepalives) */
  /* every cipher context of this data plane, so a retired session's key is wiped from each */
  pthread_mutex_t aead_lock;
  struct aead *aeads[WG_MAX_AEADS];
  pthread_mutex_t ev_lock;
  struct wg_event *ring;
  uint32_t ev_head, ev_count;
  int ev_notified;
  void (*notify)(void *ctx); /* wakes TypeScript; called without locks held */
  void *notify_ctx;
  _Atomic uint64_t unknown_index_ms[WG_UNKNOWN_INDEX_SLOTS]; /* last report per hashed source */
};

struct dataplane;
struct dp_peer;

/* public_key: our static public key (32 bytes), from which the mac1 key of handshake messages
 * sent to us is derived; NULL: no handshake message can be checked, none is queued. */
struct wg_state *wg_new(uint64_t rekey_after_ms, uint64_t reject_after_ms, const uint8_t *public_key);
void wg_free(struct wg_state *w);
/* A cipher context for one thread, known to w (NULL when out of memory or WG_MAX_AEADS are in
 * use): retiring a session wipes its keys from every such context. Used only under the data
 * plane's read lock (or the write lock, apply's), which is what makes the wipe safe. */
struct aead *wg_aead_new(struct wg_state *w);
void wg_aead_free(struct wg_state *w, struct aead *a);
uint64_t wg_now_ms(void);
/* Makes peer id exist (under the write lock). */
int wg_peer_reserve(struct wg_state *w, uint32_t id);
static inline struct wg_peer *wg_peer_get(struct wg_state *w, uint32_t id) {
  return id < w->peers_cap ? w->peers[id] : NULL;
}
/* Age of something created at `created` (ms). A clock read before `created` was set (a thread
 * that read the time, then waited for the lock while a session was installed) gives 0, never a
 * wrapped-around huge age that would make a fresh session look expired. */
static inline uint64_t wg_age_ms(uint64_t now, uint64_t created) { return now > created ? now - created : 0; }

static inline struct wg_session *wg_session_get(struct wg_state *w, uint32_t local_index) {
  struct wg_session *s = &w->sessions[local_index & WG_SESSION_MASK];
  return s->live && s->local_index == local_index ? s : NULL;
}

/* Events: push from any thread; drain copies up to max records into out (WG_EVENT_RECORD each). */
/* 0 when queued; -1 when the ring is full (drop_counter incremented). */
int wg_push_event(struct wg_state *w, const struct wg_event *e, uint64_t *drop_counter);
uint32_t wg_drain_events(struct wg_state *w, uint8_t *out, uint32_t max);
void wg_request_handshake(struct wg_state *w, uint32_t peer, int reason, uint64_t now, uint64_t *sent_counter,
                          uint64_t *drop_counter);

/* Commands (dp_apply, write lock held). */
int wg_install_session(struct dataplane *dp, const uint8_t *rec);
void wg_retire_session(struct dataplane *dp, uint32_t local_index);
void wg_send_keepalive(struct dataplane *dp, uint32_t peer);
void wg_clear_staged(struct dataplane *dp, uint32_t peer);
void wg_del_peer(struct dataplane *dp, uint32_t peer);

/* Packet path (read lock held). */
enum wg_out_verdict { WG_OUT_SEND, WG_OUT_STAGED, WG_OUT_STAGE_FULL };
/* Seals pkt[0..len) in place for peer (header written in the headroom in front of pkt). On
 * WG_OUT_SEND, out and out_len describe the datagram. DP_TAILROOM bytes after pkt + len must be
 * writable (padding and tag). c = the calling thread's counters (NULL from the control thread). */
enum wg_out_verdict wg_seal_packet(struct dataplane *dp, struct aead *a, uint32_t peer, uint8_t *pkt, size_t len,
                                   uint8_t **out, size_t *out_len, uint64_t now, uint64_t *c);

/* The same for a plaintext in two parts (an offloaded segment: rebuilt headers at p1, payload
 * where it was read at p2). On WG_OUT_SEND the datagram is three pieces: [p1 - WG_HEADER,
 * WG_HEADER + l1], [p2, l2], [tail, *tail_len] (padding and tag; tail has room for 32 bytes).
 * p1 needs WG_HEADER writable bytes in front. A packet (p2 = NULL, tail = p1 + l1) comes out
 * contiguous. */
enum wg_out_verdict wg_seal_parts(struct dataplane *dp, struct aead *a, uint32_t peer, uint8_t *p1, size_t l1,
                                  uint8_t *p2, size_t l2, uint8_t *tail, size_t *tail_len, uint64_t now, uint64_t *c);

enum wg_in_verdict {
  WG_IN_DELIVER,
  WG_IN_HANDSHAKE, /* queued for TypeScript */
  WG_IN_HANDSHAKE_DROPPED, /* the event ring was full (counted by wg_push_event) */
  WG_IN_BAD_MAC1,          /* a handshake initiation/response whose mac1 is not ours: never queued */
  WG_IN_COOKIE_STRANGER,   /* a cookie reply from an address that is no peer's: never queued */
  WG_IN_KEEPALIVE,
  WG_IN_NOT_WIREGUARD,
  WG_IN_UNKNOWN_INDEX,
  WG_IN_EXPIRED,
  WG_IN_DECRYPT,
  WG_IN_REPLAY,
  WG_IN_MALFORMED,
  WG_IN_OVERSIZED,
  WG_IN_CRYPTOKEY,
  WG_IN_BAD_IP_CSUM,
  WG_IN_VERDICTS
};
/* Adds a batch's verdict counts to the calling thread's counters (one mapping for both loops). */
void wg_count_inbound(uint64_t *c, const uint64_t counts[WG_IN_VERDICTS]);
/* Opens a datagram in place. On WG_IN_DELIVER, pkt and len are narrowed to the inner IP packet;
 * on WG_IN_DELIVER and WG_IN_KEEPALIVE (authenticated), *peer is the sending peer's id; on a
 * verdict met once the receiver index named a session of a live peer (expired, decrypt, replay,
 * and what follows authentication), *peer is that session's peer; before that, UINT32_MAX. */
enum wg_in_verdict wg_open_datagram(struct dataplane *dp, struct aead *a, const struct sockaddr_storage *from,
                                    uint8_t **pkt, size_t *len, uint64_t now, uint64_t *c, uint32_t *peer);

struct dp_queue;
/* Pins a drop verdict of wg_open_datagram (or a truncated datagram's WG_IN_OVERSIZED) on a peer in
 * q's per-peer counters (dataplane.h): on the session's peer when one was found (peer), else on
 * the peer at the outer source (from) for what is met before a session; strangers stay global
 * only. Caller holds the read lock. */
void wg_count_peer_drop(struct dp_queue *q, enum wg_in_verdict v, uint32_t peer, const struct sockaddr_storage *from);

/* Seals with a given session outside the packet path's batch (staged packets, keepalives), with
 * the caller's cipher context a. */
int wg_seal_for_control(struct dataplane *dp, struct aead *a, struct wg_session *s, uint8_t *pkt, size_t len,
                        uint8_t **out, size_t *out_len);

/* Sends a peer's staged packets with session s (its current one) and empties the stage; with
 * keepalive_if_none, an empty stage sends a keepalive instead (it confirms the session to the
 * responder). a = the calling thread's cipher context, c[ok]/c[err] = its counters. Callers: an
 * initiator's install (dp_apply, write lock) and the inbound thread that confirms a responder's
 * session (read lock). Returns the number of staged packets handed to the socket. */
int wg_flush_staged(struct dataplane *dp, struct aead *a, uint32_t peer, struct wg_session *s, int keepalive_if_none,
                    uint64_t *c, int ok, int err);

/* The endpoint of a peer, read consistently against a concurrent roaming update. */
socklen_t wg_peer_endpoint(struct dataplane *dp, uint32_t id, struct sockaddr_storage *out);

#endif
