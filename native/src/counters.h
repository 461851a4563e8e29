/*
 * Counters of one queue, read by TypeScript through a BigUint64Array over native memory.
 * The names are exported (counterNames()) so TypeScript finds each offset by name; nothing
 * here is mirrored by hand on the other side. Counters are added to with relaxed atomic adds
 * (loop.h cadd), so a reader sees whole values without locks; outbound ones have two writers
 * when the inbound thread forwards from its own TUN queue (offload.h, reply_queue).
 *
 * Directions: outbound = TUN -> UDP, inbound = UDP -> TUN.
 */
#ifndef TULLE_COUNTERS_H
#define TULLE_COUNTERS_H

#define TULLE_COUNTERS(X)                                                                     \
  X(OUT_PACKETS, "outbound_packets")           /* read from the TUN */                        \
  X(OUT_BYTES, "outbound_bytes")                                                              \
  X(OUT_SENT_PACKETS, "outbound_sent_packets") /* handed to the UDP socket */                  \
  X(OUT_SENT_BYTES, "outbound_sent_bytes")                                                    \
  X(OUT_DROP_NO_ROUTE, "outbound_drop_no_route")                                              \
  X(OUT_DROP_MALFORMED, "outbound_drop_malformed")                                            \
  X(OUT_DROP_SEND_ERROR, "outbound_drop_send_error")                                          \
  X(OUT_ICMP_UNREACHABLE, "outbound_icmp_unreachable")                                        \
  X(OUT_BATCHES, "outbound_batches")                                                          \
  X(OUT_WG_STAGED, "outbound_wg_staged") /* no session yet: queued until a handshake completes */ \
  X(OUT_DROP_STAGE_FULL, "outbound_drop_stage_full")                                          \
  X(OUT_WG_HANDSHAKE_REQUESTS, "outbound_wg_handshake_requests")                              \
  X(OUT_DROP_EVENT_QUEUE_FULL, "outbound_drop_event_queue_full")                              \
  X(IN_PACKETS, "inbound_packets")             /* received from the UDP socket */              \
  X(IN_BYTES, "inbound_bytes")                                                                \
  X(IN_DELIVERED_PACKETS, "inbound_delivered_packets") /* written to the TUN */               \
  X(IN_DELIVERED_BYTES, "inbound_delivered_bytes")                                            \
  X(IN_DROP_UNKNOWN_PEER, "inbound_drop_unknown_peer")                                        \
  X(IN_DROP_SPOOFED_SOURCE, "inbound_drop_spoofed_source")                                    \
  X(IN_DROP_MALFORMED, "inbound_drop_malformed")                                              \
  X(IN_DROP_OVERSIZED, "inbound_drop_oversized")                                              \
  X(IN_DROP_TUN_WRITE_ERROR, "inbound_drop_tun_write_error")                                  \
  X(IN_BATCHES, "inbound_batches")                                                            \
  /* offload path (outbound-offload.c, inbound-offload.c); packets above count inner packets */ \
  X(OUT_TUN_READS, "outbound_tun_reads")       /* packets or super-packets read */             \
  X(OUT_GSO_SPLITS, "outbound_gso_splits")     /* super-packets cut into segments */           \
  X(OUT_CSUM_COMPLETED, "outbound_csum_completed")                                            \
  X(OUT_DROP_BAD_VNET, "outbound_drop_bad_vnet") /* virtio-net header unusable */             \
  X(OUT_UDP_SENDS, "outbound_udp_sends")       /* datagrams or UDP_SEGMENT trains handed over */ \
  X(OUT_GSO_FALLBACKS, "outbound_gso_fallbacks") /* UDP_SEGMENT refused: sent one by one */    \
  X(OUT_INLINE_READS, "outbound_inline_reads") /* TUN reads done by the inbound thread */     \
  X(IN_UDP_DATAGRAMS, "inbound_udp_datagrams") /* as returned by recvmmsg (UDP_GRO: trains) */  \
  X(IN_TUN_WRITES, "inbound_tun_writes")                                                      \
  X(IN_COALESCED, "inbound_coalesced")         /* packets merged into an earlier one */        \
  X(IN_CSUM_UNVERIFIED, "inbound_csum_unverified") /* not merged: checksum did not verify */ \
  X(IN_SPIN_RECEIVES, "inbound_spin_receives") /* batches received by the spinning outbound thread */ \
  X(IN_WG_HANDSHAKE_MESSAGES, "inbound_wg_handshake_messages") /* types 1-3, queued for TS */   \
  X(IN_DROP_HANDSHAKE_QUEUE_FULL, "inbound_drop_handshake_queue_full")                        \
  X(IN_WG_KEEPALIVES, "inbound_wg_keepalives")                                                \
  X(IN_WG_ROAMED, "inbound_wg_roamed") /* an authenticated packet moved a peer's endpoint */   \
  X(IN_WG_HANDSHAKE_REQUESTS, "inbound_wg_handshake_requests")                                \
  X(IN_DROP_PLAINTEXT, "inbound_drop_plaintext") /* encrypted mode: not a WireGuard message */ \
  X(IN_DROP_UNKNOWN_INDEX, "inbound_drop_unknown_index")                                      \
  X(IN_WG_UNKNOWN_INDEX_REPORTS, "inbound_wg_unknown_index_reports") /* of those: told TS (from a peer's address, rate-limited) */ \
  X(IN_DROP_EXPIRED_SESSION, "inbound_drop_expired_session")                                  \
  X(IN_DROP_DECRYPT, "inbound_drop_decrypt")                                                  \
  X(IN_DROP_REPLAY, "inbound_drop_replay")                                                    \
  X(IN_DROP_CRYPTOKEY_ROUTING, "inbound_drop_cryptokey_routing")                              \
  X(CTL_WG_SENT_PACKETS, "control_wg_sent_packets") /* staged flushes, keepalives, raw sends */ \
  X(CTL_WG_SEND_ERRORS, "control_wg_send_errors")                                           \
  X(IN_DROP_IP_HEADER_CHECKSUM, "inbound_drop_ip_header_checksum") /* inner IPv4 header damaged */ \
  X(IN_WG_STAGED_SENT, "inbound_wg_staged_sent") /* staged packets sent once a responder session was confirmed */ \
  X(IN_WG_STAGED_SEND_ERRORS, "inbound_wg_staged_send_errors")                               \
  X(IN_DROP_HANDSHAKE_MAC1, "inbound_drop_handshake_mac1") /* initiation/response: mac1 not ours */ \
  X(IN_DROP_COOKIE_REPLY_STRANGER, "inbound_drop_cookie_reply_stranger") /* not from a peer's address */ \
  X(OUT_REPLY_QUEUE_READS, "outbound_reply_queue_reads") /* TUN reads from the inbound thread's own queue (reply_queue) */

enum tulle_counter {
#define X(id, name) TC_##id,
  TULLE_COUNTERS(X)
#undef X
  TC_COUNT
};

/* Room for counters added later without moving the ones above (stable offsets per build). */
#define TULLE_COUNTER_SLOTS 64
_Static_assert(TC_COUNT <= TULLE_COUNTER_SLOTS, "counters outgrew their slots");

#endif
