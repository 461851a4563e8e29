/*
 * Route table: overlay subnet -> peer id. Leases of one network share one prefix length, so a
 * lookup is one hash probe per distinct prefix length present (normally exactly one per family).
 * Open addressing, linear probing, backward-shift deletion; keys are (family, masked address, len).
 * Not thread-safe: the data plane guards it with its rwlock.
 */
#ifndef TULLE_ROUTE_TABLE_H
#define TULLE_ROUTE_TABLE_H
#include <stdint.h>
#include <stddef.h>

#define RT_NONE UINT32_MAX
/* At most this many routes: a set that would add one more fails (-1), so no sequence of
 * commands grows the table past 2 * RT_MAX_ROUTES slots (48 MiB). A /8 network of /24 leases
 * is 65,536 routes; of /30 leases 4 M, which tulle does not serve. */
#ifndef RT_MAX_ROUTES
#define RT_MAX_ROUTES (1u << 20)
#endif

struct rt_entry {
  uint8_t addr[16]; /* masked; IPv4 in the first 4 bytes, rest zero */
  uint8_t family;   /* 0 = empty slot, 4 or 6 */
  uint8_t len;
  uint32_t peer;
};

struct route_table {
  struct rt_entry *slots;
  size_t cap; /* power of two */
  size_t used;
  uint32_t len_count[2][129]; /* [0]=v4, [1]=v6: routes per prefix length */
  uint8_t lens[2][129];       /* distinct lengths present, longest first */
  uint8_t n_lens[2];
};

int rt_init(struct route_table *t);
void rt_free(struct route_table *t);
/* family 4|6; addr is 4 or 16 bytes. Returns 0, or -1 on bad length / table full / no memory. */
int rt_set(struct route_table *t, int family, const uint8_t *addr, int len, uint32_t peer);
int rt_del(struct route_table *t, int family, const uint8_t *addr, int len);
uint32_t rt_lookup(const struct route_table *t, int family, const uint8_t *addr);
void rt_clear(struct route_table *t);

#endif
