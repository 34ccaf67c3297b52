/* reasm.h — reassembly of multi-packet (REQUEST_FRAG) requests.
 *
 * Every byte is preallocated by nc_reasm_init(): an arena of fixed blocks
 * for request bodies and a table of partial requests. A body occupies a run
 * of contiguous blocks so the finished request can be parsed in place.
 * Nothing allocates after init; time comes from the caller (monotonic ns).
 * Not thread-safe: one reassembler per lcore.
 */
#ifndef HOST_NET_REASM_H
#define HOST_NET_REASM_H

#include <stdint.h>

#include "net/proto.h"

#define NC_REASM_BLOCK	2048	/* arena allocation unit, bytes */

/* A client address. Limits are per address (all ports); the request key
 * is (address, port, request id). */
struct nc_peer {
	uint8_t addr[16];	/* IPv4 in the first 4 bytes, rest zero */
	uint16_t port;
	uint8_t family;		/* 4 or 6 */
	uint8_t pad_;		/* keep zero */
};

struct nc_reasm_cfg {
	uint32_t arena_bytes;	/* body memory, all clients */
	uint32_t max_partials;	/* requests in reassembly at once */
	uint32_t client_bytes;	/* body bytes one address may hold */
	uint32_t client_partials;	/* requests one address may hold */
	uint64_t timeout_ns;	/* lifetime of an incomplete request */
	uint64_t evict_age_ns;	/* when full, evict partials at least this old */
};

/* Defaults documented in docs/protocol.md. */
#define NC_REASM_DEFAULT_CFG { \
	.arena_bytes = 16u << 20, .max_partials = 1024, \
	.client_bytes = 1u << 20, .client_partials = 4, \
	.timeout_ns = 500000000ull, .evict_age_ns = 125000000ull }

/* Counters: one per outcome of nc_reasm_add() plus housekeeping. */
struct nc_reasm_stats {
	uint64_t frags;		/* fragments offered */
	uint64_t stored;	/* fragments stored */
	uint64_t completed;	/* requests completed */
	uint64_t dup;		/* identical duplicate fragments */
	uint64_t conflict;	/* fragments disagreeing with the partial */
	uint64_t pool_full;	/* no slot or arena space */
	uint64_t client_limit;	/* per-address bound reached */
	uint64_t too_long;	/* body larger than the arena/client bound */
	uint64_t timeout;	/* partials dropped for age */
	uint64_t evicted;	/* partials evicted to make room */
	uint64_t bytes_copied;	/* fragment bytes copied into the arena */
	uint32_t active;	/* partial + completed-not-released slots */
	uint32_t blocks_used;
};

struct nc_reasm_slot;

struct nc_reasm {
	struct nc_reasm_cfg cfg;
	uint8_t *arena;
	uint8_t *block_used;	/* one byte per block */
	uint32_t nblocks;
	struct nc_reasm_slot *slots;
	uint32_t *bucket;	/* hash heads, slot index + 1, 0 = empty */
	uint32_t nbuckets;	/* power of two */
	uint32_t free_head;	/* free slot list, index + 1 */
	struct nc_reasm_stats st;
};

/* A completed request; body stays valid until nc_reasm_release(handle). */
struct nc_reasm_done {
	uint32_t handle;
	uint64_t rid;
	struct nc_peer peer;
	const uint8_t *body;
	uint32_t len;
};

/* Allocate the pool. Errors: -NC_E_INVAL, -NC_E_NOMEM. */
int nc_reasm_init(struct nc_reasm *r, const struct nc_reasm_cfg *cfg);
void nc_reasm_fini(struct nc_reasm *r);

/* Offer one parsed fragment of request rid from peer at time now_ns.
 * Returns 0 when stored (request still incomplete), 1 when it completed
 * the request (*done filled; release it later), or a negative drop reason:
 * -NC_E_DUP, -NC_E_CONFLICT (the partial is discarded too), -NC_E_POOL_FULL,
 * -NC_E_CLIENT_LIMIT, -NC_E_TOO_LONG, -NC_E_INVAL. */
int nc_reasm_add(struct nc_reasm *r, const struct nc_peer *peer, uint64_t rid,
		 const struct nc_frag_view *f, uint64_t now_ns,
		 struct nc_reasm_done *done);

/* Return a completed request's memory to the pool. */
void nc_reasm_release(struct nc_reasm *r, uint32_t handle);

/* Drop partials older than the timeout; returns how many were dropped. */
unsigned nc_reasm_expire(struct nc_reasm *r, uint64_t now_ns);

/* Bytes one address currently holds (for tests and metrics). */
uint64_t nc_reasm_client_bytes(const struct nc_reasm *r,
			       const struct nc_peer *peer);

#endif
