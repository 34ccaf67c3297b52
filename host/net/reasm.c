/* reasm.c — fixed-pool reassembly of fragmented requests. */
#include "net/reasm.h"

#include <stdlib.h>
#include <string.h>

enum slot_state { SLOT_FREE, SLOT_PARTIAL, SLOT_DONE };

struct nc_reasm_slot {
	struct nc_peer peer;
	uint64_t rid;
	uint64_t first_ns;	/* first fragment: the timeout runs from here */
	uint32_t total;
	uint16_t stride;
	uint16_t count;
	uint16_t got;
	uint8_t state;
	uint32_t block0;
	uint32_t nblk;
	uint32_t next;		/* hash chain or free list, index + 1 */
	uint64_t have[NC_MAX_FRAGS / 64];
};

static uint32_t hash_key(const struct nc_peer *p, uint64_t rid)
{
	uint64_t h = rid * 0x9e3779b97f4a7c15ull;
	unsigned i;

	for (i = 0; i < sizeof(p->addr); i++)
		h = (h ^ p->addr[i]) * 0x100000001b3ull;
	h = (h ^ p->port) * 0x100000001b3ull;
	return (uint32_t)(h ^ h >> 32);
}

static int same_addr(const struct nc_peer *a, const struct nc_peer *b)
{
	return a->family == b->family && !memcmp(a->addr, b->addr, 16);
}

static int same_key(const struct nc_reasm_slot *s, const struct nc_peer *p,
		    uint64_t rid)
{
	return s->rid == rid && s->peer.port == p->port && same_addr(&s->peer, p);
}

int nc_reasm_init(struct nc_reasm *r, const struct nc_reasm_cfg *cfg)
{
	uint32_t i;

	memset(r, 0, sizeof(*r));
	if (!cfg->arena_bytes || !cfg->max_partials || !cfg->timeout_ns ||
	    cfg->max_partials > (1u << 24))
		return -NC_E_INVAL;
	r->cfg = *cfg;
	r->nblocks = (cfg->arena_bytes + NC_REASM_BLOCK - 1) / NC_REASM_BLOCK;
	for (r->nbuckets = 1; r->nbuckets < 2 * cfg->max_partials;)
		r->nbuckets <<= 1;
	r->arena = malloc((size_t)r->nblocks * NC_REASM_BLOCK);
	r->block_used = calloc(r->nblocks, 1);
	r->slots = calloc(cfg->max_partials, sizeof(*r->slots));
	r->bucket = calloc(r->nbuckets, sizeof(*r->bucket));
	if (!r->arena || !r->block_used || !r->slots || !r->bucket) {
		nc_reasm_fini(r);
		return -NC_E_NOMEM;
	}
	for (i = 0; i < cfg->max_partials; i++)
		r->slots[i].next = i + 2 <= cfg->max_partials ? i + 2 : 0;
	r->free_head = 1;
	return 0;
}

void nc_reasm_fini(struct nc_reasm *r)
{
	free(r->arena);
	free(r->block_used);
	free(r->slots);
	free(r->bucket);
	memset(r, 0, sizeof(*r));
}

static uint32_t *bucket_of(struct nc_reasm *r, const struct nc_peer *p,
			   uint64_t rid)
{
	return &r->bucket[hash_key(p, rid) & (r->nbuckets - 1)];
}

static struct nc_reasm_slot *lookup(struct nc_reasm *r,
				    const struct nc_peer *p, uint64_t rid)
{
	uint32_t i = *bucket_of(r, p, rid);

	while (i) {
		struct nc_reasm_slot *s = &r->slots[i - 1];

		if (same_key(s, p, rid))
			return s;
		i = s->next;
	}
	return NULL;
}

/* Unhash a slot, give its blocks back and put it on the free list. */
static void slot_free(struct nc_reasm *r, struct nc_reasm_slot *s)
{
	uint32_t idx = (uint32_t)(s - r->slots) + 1;
	uint32_t *link = bucket_of(r, &s->peer, s->rid);

	while (*link && *link != idx)
		link = &r->slots[*link - 1].next;
	if (*link)
		*link = s->next;
	memset(r->block_used + s->block0, 0, s->nblk);
	r->st.blocks_used -= s->nblk;
	r->st.active--;
	memset(s, 0, sizeof(*s));
	s->next = r->free_head;
	r->free_head = idx;
}

/* First fit of n contiguous blocks; returns the first block or -1. */
static long blocks_find(const struct nc_reasm *r, uint32_t n)
{
	uint32_t i, run = 0;

	for (i = 0; i < r->nblocks; i++) {
		run = r->block_used[i] ? 0 : run + 1;
		if (run == n)
			return (long)(i + 1 - n);
	}
	return -1;
}

unsigned nc_reasm_expire(struct nc_reasm *r, uint64_t now_ns)
{
	unsigned i, n = 0;

	for (i = 0; i < r->cfg.max_partials; i++) {
		struct nc_reasm_slot *s = &r->slots[i];

		if (s->state == SLOT_PARTIAL &&
		    now_ns - s->first_ns >= r->cfg.timeout_ns) {
			slot_free(r, s);
			r->st.timeout++;
			n++;
		}
	}
	return n;
}

/* Evict the oldest partial that is at least evict_age old. */
static int evict_one(struct nc_reasm *r, uint64_t now_ns)
{
	struct nc_reasm_slot *old = NULL;
	unsigned i;

	for (i = 0; i < r->cfg.max_partials; i++) {
		struct nc_reasm_slot *s = &r->slots[i];

		if (s->state != SLOT_PARTIAL ||
		    now_ns - s->first_ns < r->cfg.evict_age_ns)
			continue;
		if (!old || s->first_ns < old->first_ns)
			old = s;
	}
	if (!old)
		return 0;
	slot_free(r, old);
	r->st.evicted++;
	return 1;
}

uint64_t nc_reasm_client_bytes(const struct nc_reasm *r,
			       const struct nc_peer *p)
{
	uint64_t bytes = 0;
	unsigned i;

	for (i = 0; i < r->cfg.max_partials; i++)
		if (r->slots[i].state != SLOT_FREE &&
		    same_addr(&r->slots[i].peer, p))
			bytes += (uint64_t)r->slots[i].nblk * NC_REASM_BLOCK;
	return bytes;
}

static int client_over(const struct nc_reasm *r, const struct nc_peer *p,
		       uint32_t nblk)
{
	uint64_t bytes = (uint64_t)nblk * NC_REASM_BLOCK;
	unsigned i, held = 0;

	for (i = 0; i < r->cfg.max_partials; i++) {
		const struct nc_reasm_slot *s = &r->slots[i];

		if (s->state == SLOT_FREE || !same_addr(&s->peer, p))
			continue;
		held++;
		bytes += (uint64_t)s->nblk * NC_REASM_BLOCK;
	}
	return held >= r->cfg.client_partials || bytes > r->cfg.client_bytes;
}

/* Find a slot and blocks for a new partial, expiring/evicting if needed. */
static struct nc_reasm_slot *slot_new(struct nc_reasm *r, uint32_t nblk,
				      uint64_t now_ns)
{
	struct nc_reasm_slot *s;
	long b0;

	for (;;) {
		b0 = r->free_head ? blocks_find(r, nblk) : -1;
		if (b0 >= 0)
			break;
		if (!nc_reasm_expire(r, now_ns) && !evict_one(r, now_ns))
			return NULL;
	}
	s = &r->slots[r->free_head - 1];
	r->free_head = s->next;
	s->block0 = (uint32_t)b0;
	s->nblk = nblk;
	memset(r->block_used + b0, 1, nblk);
	r->st.blocks_used += nblk;
	r->st.active++;
	return s;
}

static int start_partial(struct nc_reasm *r, const struct nc_peer *p,
			 uint64_t rid, const struct nc_frag_view *f,
			 uint64_t now_ns, struct nc_reasm_slot **out)
{
	uint32_t nblk = (f->total_len + NC_REASM_BLOCK - 1) / NC_REASM_BLOCK;
	struct nc_reasm_slot *s;
	uint32_t *head;

	if (nblk > r->nblocks ||
	    (uint64_t)nblk * NC_REASM_BLOCK > r->cfg.client_bytes) {
		r->st.too_long++;
		return -NC_E_TOO_LONG;
	}
	if (client_over(r, p, nblk)) {
		r->st.client_limit++;
		return -NC_E_CLIENT_LIMIT;
	}
	s = slot_new(r, nblk, now_ns);
	if (!s) {
		r->st.pool_full++;
		return -NC_E_POOL_FULL;
	}
	s->peer = *p;
	s->rid = rid;
	s->first_ns = now_ns;
	s->total = f->total_len;
	s->stride = f->stride;
	s->count = f->count;
	s->state = SLOT_PARTIAL;
	head = bucket_of(r, p, rid);
	s->next = *head;
	*head = (uint32_t)(s - r->slots) + 1;
	*out = s;
	return 0;
}

static uint8_t *frag_dst(struct nc_reasm *r, const struct nc_reasm_slot *s,
			 uint16_t index)
{
	return r->arena + (size_t)s->block0 * NC_REASM_BLOCK +
	       (size_t)index * s->stride;
}

/* A fragment for an existing partial: duplicate, conflict or new data. */
static int check_existing(struct nc_reasm *r, struct nc_reasm_slot *s,
			  const struct nc_frag_view *f)
{
	int have = (int)(s->have[f->index / 64] >> (f->index % 64) & 1);

	if (s->state == SLOT_DONE) {
		r->st.dup++;
		return -NC_E_DUP;
	}
	if (f->total_len != s->total || f->stride != s->stride ||
	    f->count != s->count ||
	    (have && memcmp(frag_dst(r, s, f->index), f->data, f->data_len))) {
		slot_free(r, s);
		r->st.conflict++;
		return -NC_E_CONFLICT;
	}
	if (have) {
		r->st.dup++;
		return -NC_E_DUP;
	}
	return 0;
}

static int frag_sane(const struct nc_frag_view *f)
{
	uint32_t last;

	if (!f->total_len || !f->stride || !f->count || f->index >= f->count ||
	    f->count > NC_MAX_FRAGS ||
	    (uint64_t)(f->count - 1) * f->stride >= f->total_len)
		return 0;
	last = f->total_len - (uint32_t)(f->count - 1) * f->stride;
	if (last > f->stride)
		return 0;
	return f->data_len == (f->index + 1u == f->count ? last : f->stride);
}

int nc_reasm_add(struct nc_reasm *r, const struct nc_peer *p, uint64_t rid,
		 const struct nc_frag_view *f, uint64_t now_ns,
		 struct nc_reasm_done *done)
{
	struct nc_reasm_slot *s;
	int err;

	r->st.frags++;
	if (!frag_sane(f))
		return -NC_E_INVAL;
	s = lookup(r, p, rid);
	if (s && s->state == SLOT_PARTIAL &&
	    now_ns - s->first_ns >= r->cfg.timeout_ns) {
		slot_free(r, s);	/* stale: start over with this one */
		r->st.timeout++;
		s = NULL;
	}
	err = s ? check_existing(r, s, f) : start_partial(r, p, rid, f, now_ns, &s);
	if (err)
		return err;
	memcpy(frag_dst(r, s, f->index), f->data, f->data_len);
	r->st.bytes_copied += f->data_len;
	r->st.stored++;
	s->have[f->index / 64] |= 1ull << (f->index % 64);
	if (++s->got < s->count)
		return 0;
	s->state = SLOT_DONE;
	r->st.completed++;
	done->handle = (uint32_t)(s - r->slots);
	done->rid = rid;
	done->peer = *p;
	done->body = frag_dst(r, s, 0);
	done->len = s->total;
	return 1;
}

void nc_reasm_release(struct nc_reasm *r, uint32_t handle)
{
	if (handle < r->cfg.max_partials &&
	    r->slots[handle].state == SLOT_DONE)
		slot_free(r, &r->slots[handle]);
}
