/* fw_pool.c — the state pool: state handles, KV pages, snapshots.
 *
 * A sequence holds one state handle (its conv and delta-rule blocks in every
 * Gated DeltaNet layer, and a block-table row) and the KV pages its table
 * names.  A snapshot is another handle: a copy of the GDN blocks and a table
 * row naming the same pages, counted in ref[].  Pages are never written below
 * a sharer's position (a sequence writes only at and after its own position,
 * a snapshot is never written), so sharing needs no copy, except when a
 * rollback makes a sequence write again below a page's end (fw_snap_rollback).
 *
 * The prefix cache keys snapshots taken at page boundaries of prompts by a
 * chained hash of the tokens before them (two independent 64-bit lanes); a
 * submit restores the longest one its prompt starts with.  Unpinned snapshots
 * are evicted least recently used first, when the cache is over its byte
 * budget or the pool needs a handle or a page.
 *
 * Everything is fixed-size in struct fw; the pool sizes come from placement.
 */
#include <string.h>
#include "fw.h"
#include "krnl_state.h"

#define P (&fw->pool)

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Fold one page of tokens into a chained key. */
static void key_fold(uint64_t key[2], const int32_t *tok, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t t = (uint32_t)tok[i];

		key[0] = mix64(key[0] ^ (t + 0x9e3779b97f4a7c15ull));
		key[1] = mix64(key[1] + t * 0xd6e8feb86659fd93ull + 0x632be59bd9b4e019ull);
	}
}

/* The key of the empty prefix: the model and its formats. */
static void key_seed(const struct fw *fw, uint64_t key[2])
{
	const uint8_t *b = (const uint8_t *)&fw->cfg;

	key[0] = 0x6e657874636172ull;
	key[1] = 0x7365656473ull;
	for (size_t i = 0; i < sizeof(fw->cfg); i++) {
		key[0] = mix64(key[0] ^ b[i]);
		key[1] = mix64(key[1] + b[i] + 1);
	}
}

static int hal_ok(int rc)
{
	return rc ? -FW_EHAL : 0;
}

static uint64_t tok_at(const struct fw *fw, const struct fw_seq *s, uint32_t pos)
{
	return fw->hal.ctrl->tok_addr +
	       ((uint64_t)(s - fw->seq) * fw->ctx + pos) * sizeof(int32_t);
}

static uint64_t bt_at(const struct fw *fw, uint32_t blk, uint32_t i)
{
	return fw->s.bt + ((uint64_t)blk * P->tabw + i) * sizeof(int32_t);
}

void fw_pool_publish(struct fw *fw)
{
	struct fw_ctrl *c = fw->hal.ctrl;
	uint32_t live = 0, snaps = 0;

	for (uint32_t i = 0; i < fw->n_seqs; i++)
		live += fw->seq[i].active;
	for (uint32_t i = 0; i < P->nblk; i++)
		snaps += P->snap[i].used;
	P->seen_pages = P->npage_free;
	P->seen_blks = P->nblk_free;
	atomic_store_explicit(&c->blocks_free, P->nblk_free, memory_order_relaxed);
	atomic_store_explicit(&c->pages_free, P->npage_free, memory_order_relaxed);
	atomic_store_explicit(&c->live_seqs, live, memory_order_relaxed);
	atomic_store_explicit(&c->snaps, snaps, memory_order_relaxed);
	atomic_store_explicit(&c->snap_bytes, P->held, memory_order_relaxed);
}

int fw_pool_init(struct fw *fw)
{
	struct fw_ctrl *c = fw->hal.ctrl;

	P->nblk_free = 0;
	for (uint32_t b = P->nblk; b-- > 0;)
		P->blk_free[P->nblk_free++] = b;
	P->npage_free = 0;
	for (uint32_t p = P->npages; p-- > 0;)
		P->page_free[P->npage_free++] = p;
	memset(P->ref, 0, sizeof(P->ref));
	memset(P->snap, 0, sizeof(P->snap));
	P->held = 0;
	P->every = c->prefix_every / KRNL_KV_PAGE * KRNL_KV_PAGE;
	P->budget = c->prefix_budget;
	fw_pool_publish(fw);
	return 0;
}

/* ---- pages ---- */

static void page_put(struct fw *fw, uint32_t pg)
{
	if (pg >= P->npages || P->ref[pg] == 0)
		return;
	if (--P->ref[pg] == 0)
		P->page_free[P->npage_free++] = pg;
}

/* Put back the pages of a table row from index `from` on. */
static int row_put(struct fw *fw, uint32_t blk, uint32_t from, uint32_t npg)
{
	int32_t ids[256];

	for (uint32_t at = from; at < npg; at += 256) {
		uint32_t k = npg - at < 256 ? npg - at : 256;

		if (fw->hal.read(fw->hal.ctx, bt_at(fw, blk, at), ids, (uint64_t)k * 4))
			return -FW_EHAL;
		for (uint32_t i = 0; i < k; i++)
			page_put(fw, (uint32_t)ids[i]);
	}
	return 0;
}

/* Take a reference on every page of a table row's first npg entries. */
static int row_get(struct fw *fw, uint32_t blk, uint32_t npg)
{
	int32_t ids[256];

	for (uint32_t at = 0; at < npg; at += 256) {
		uint32_t k = npg - at < 256 ? npg - at : 256;

		if (fw->hal.read(fw->hal.ctx, bt_at(fw, blk, at), ids, (uint64_t)k * 4))
			return -FW_EHAL;
		for (uint32_t i = 0; i < k; i++)
			if ((uint32_t)ids[i] < P->npages)
				P->ref[ids[i]]++;
	}
	return 0;
}

/* ---- snapshots ---- */

static uint64_t snap_bytes(const struct fw *fw, uint32_t npg)
{
	return P->blk_bytes + (uint64_t)npg * P->page_bytes;
}

static int snap_free(struct fw *fw, struct fw_snap *sn)
{
	int rc = row_put(fw, sn->blk, 0, sn->npg);

	P->blk_free[P->nblk_free++] = sn->blk;
	if (!sn->pinned)
		P->held -= sn->bytes;
	memset(sn, 0, sizeof(*sn));
	return rc;
}

/* Evict the least recently used prefix snapshot: 1 if one went, 0 if none. */
static int evict_one(struct fw *fw)
{
	struct fw_snap *lru = NULL;

	for (uint32_t i = 0; i < P->nblk; i++) {
		struct fw_snap *sn = &P->snap[i];

		if (sn->used && !sn->pinned && (!lru || sn->used_at < lru->used_at))
			lru = sn;
	}
	if (!lru)
		return 0;
	snap_free(fw, lru);
	atomic_fetch_add_explicit(&fw->hal.ctrl->prefix_evicted, 1, memory_order_relaxed);
	return 1;
}

static int blk_get(struct fw *fw, uint32_t *b)
{
	while (P->nblk_free == 0)
		if (!evict_one(fw))
			return -FW_ENOSPC;
	*b = P->blk_free[--P->nblk_free];
	return 0;
}

static int page_get(struct fw *fw, uint32_t *pg)
{
	while (P->npage_free == 0)
		if (!evict_one(fw))
			return -FW_ENOSPC;
	*pg = P->page_free[--P->npage_free];
	P->ref[*pg] = 1;
	return 0;
}

/* Zero (src == UINT32_MAX) or copy the GDN blocks of handle dst. */
static int state_set(struct fw *fw, uint32_t dst, uint32_t src)
{
	const struct fw_model_cfg *c = &fw->cfg;
	uint64_t conv = krnl_conv_block(fw->lin_ch, c->conv_k) * 4;
	uint64_t dn = krnl_dn_block(c->lin_nv, c->lin_dk, c->lin_dv) * 4;
	int rc = 0;

	for (uint32_t l = 0; l < fw_layers(c); l++) {
		const struct fw_layer *L = &fw->layer[l];

		if (c->layer_attn[l])
			continue;
		if (src == UINT32_MAX) {
			rc |= fw->hal.fill(fw->hal.ctx, L->conv_state + dst * conv, 0, conv);
			rc |= fw->hal.fill(fw->hal.ctx, L->dn_state + dst * dn, 0, dn);
		} else {
			rc |= fw->hal.copy(fw->hal.ctx, L->conv_state + dst * conv,
					   L->conv_state + src * conv, conv);
			rc |= fw->hal.copy(fw->hal.ctx, L->dn_state + dst * dn,
					   L->dn_state + src * dn, dn);
		}
	}
	return hal_ok(rc);
}

/* Copy a KV page in every attention layer. */
static int page_copy(struct fw *fw, uint32_t dst, uint32_t src)
{
	const struct fw_model_cfg *c = &fw->cfg;
	uint64_t pb = krnl_kv_page(c->n_kv_heads, c->head_dim) * krnl_kv_es(c->dt_kv);
	int rc = 0;

	for (uint32_t l = 0; l < fw_layers(c); l++) {
		const struct fw_layer *L = &fw->layer[l];

		if (!c->layer_attn[l])
			continue;
		rc |= fw->hal.copy(fw->hal.ctx, L->kcache + dst * pb, L->kcache + src * pb, pb);
		rc |= fw->hal.copy(fw->hal.ctx, L->vcache + dst * pb, L->vcache + src * pb, pb);
	}
	return hal_ok(rc);
}

/* The token at pos of s where a prefix entry depends on it (an MTP head's
 * KV at pos - 1 was computed from it), else -1; -2 if it is not known yet. */
static int32_t next_tok(const struct fw *fw, const struct fw_seq *s, uint32_t pos)
{
	int32_t t;

	if (!fw->cfg.mtp)
		return -1;
	if (pos >= s->len || fw->hal.read(fw->hal.ctx, tok_at(fw, s, pos), &t, 4))
		return -2;
	return t;
}

/* A new snapshot of s at its position: its GDN blocks copied, its first npg
 * pages shared. */
static int snap_new(struct fw *fw, struct fw_seq *s, int pinned, uint32_t *id)
{
	uint32_t npg = krnl_kv_pages(s->pos), b;
	int32_t next = pinned ? -1 : next_tok(fw, s, s->pos);
	struct fw_snap *sn;
	int rc;

	if (next == -2)
		return -FW_ENOSPC;	/* not a prefix entry yet */
	if (!pinned && P->budget) {
		while (P->held + snap_bytes(fw, npg) > P->budget)
			if (!evict_one(fw))
				return -FW_ENOSPC;
	}
	rc = blk_get(fw, &b);
	if (rc)
		return rc;
	sn = &P->snap[b];	/* a snapshot's id is its handle */
	rc = state_set(fw, b, s->blk);
	if (!rc && npg)
		rc = hal_ok(fw->hal.copy(fw->hal.ctx, bt_at(fw, b, 0), bt_at(fw, s->blk, 0),
					 (uint64_t)npg * 4));
	if (!rc)
		rc = row_get(fw, b, npg);
	if (rc) {
		P->blk_free[P->nblk_free++] = b;
		return rc;
	}
	*sn = (struct fw_snap){ .used = 1, .pinned = (uint32_t)pinned, .blk = b,
				.npos = s->pos, .npg = npg, .next = next,
				.seq = (uint32_t)(s - fw->seq),
				.generated = s->generated, .len = s->len,
				.key = { s->key[0], s->key[1] }, .used_at = ++P->tick,
				.bytes = snap_bytes(fw, npg) };
	if (!pinned)
		P->held += sn->bytes;
	*id = b;
	return 0;
}

int fw_snap_take(struct fw *fw, struct fw_seq *s, uint32_t *id)
{
	return snap_new(fw, s, 1, id);
}

int fw_snap_drop(struct fw *fw, uint32_t id)
{
	if (id >= P->nblk || !P->snap[id].used || !P->snap[id].pinned)
		return -FW_EINVAL;
	return snap_free(fw, &P->snap[id]);
}

/* Make s what snapshot sn holds: its GDN blocks, its pages (the ones after
 * them go back), its position. */
static int restore(struct fw *fw, struct fw_seq *s, struct fw_snap *sn)
{
	int rc = state_set(fw, s->blk, sn->blk);

	if (!rc)
		rc = row_put(fw, s->blk, 0, s->npg);
	if (!rc && sn->npg)
		rc = hal_ok(fw->hal.copy(fw->hal.ctx, bt_at(fw, s->blk, 0), bt_at(fw, sn->blk, 0),
					 (uint64_t)sn->npg * 4));
	if (!rc)
		rc = row_get(fw, s->blk, sn->npg);
	if (rc)
		return rc;
	s->npg = sn->npg;
	s->pos = sn->npos;
	/* The page of the next position is written again below its end: it must
	 * be the sequence's own. */
	if (sn->npos % KRNL_KV_PAGE) {
		uint32_t i = sn->npos / KRNL_KV_PAGE, pg, fresh;

		if (fw->hal.read(fw->hal.ctx, bt_at(fw, s->blk, i), &pg, 4))
			return -FW_EHAL;
		if (pg < P->npages && P->ref[pg] > 1) {
			rc = page_get(fw, &fresh);
			if (!rc)
				rc = page_copy(fw, fresh, pg);
			if (!rc)
				rc = hal_ok(fw->hal.write(fw->hal.ctx, bt_at(fw, s->blk, i), &fresh, 4));
			if (rc)
				return rc;
			page_put(fw, pg);
		}
	}
	sn->used_at = ++P->tick;
	return 0;
}

int fw_snap_rollback(struct fw *fw, struct fw_seq *s, uint32_t id)
{
	struct fw_snap *sn;
	int rc;

	if (id >= P->nblk || !P->snap[id].used || !P->snap[id].pinned ||
	    &fw->seq[P->snap[id].seq] != s)
		return -FW_EINVAL;
	sn = &P->snap[id];
	rc = restore(fw, s, sn);
	if (rc)
		return rc;
	s->generated = sn->generated;
	s->len = sn->len;
	s->draft = -1;
	s->emitted = s->pos;	/* replayed positions speak again */
	s->key[0] = sn->key[0];
	s->key[1] = sn->key[1];
	s->keyed = sn->npos / KRNL_KV_PAGE;
	if (s->keyed * KRNL_KV_PAGE != sn->npos)
		s->keyed = UINT32_MAX;	/* mid-page: no prefix snapshots after this */
	return 0;
}

/* ---- sequences ---- */

int fw_pool_admit(struct fw *fw, struct fw_seq *s)
{
	int rc = blk_get(fw, &s->blk);

	s->spare = UINT32_MAX;
	s->draft = -1;
	if (rc)
		return rc;
	/* a spare handle for draft rows; without one the sequence decodes plainly */
	if (fw->spec && P->nblk_free)
		s->spare = P->blk_free[--P->nblk_free];
	s->npg = 0;
	s->born = ++P->born;
	key_seed(fw, s->key);
	s->keyed = 0;
	rc = state_set(fw, s->blk, UINT32_MAX);
	if (rc) {
		P->blk_free[P->nblk_free++] = s->blk;
		if (s->spare != UINT32_MAX)
			P->blk_free[P->nblk_free++] = s->spare;
		s->spare = UINT32_MAX;
	}
	return rc;
}

int fw_pool_release(struct fw *fw, struct fw_seq *s)
{
	int rc = row_put(fw, s->blk, 0, s->npg);

	for (uint32_t i = 0; i < P->nblk; i++)	/* its rollback points */
		if (P->snap[i].used && P->snap[i].pinned && &fw->seq[P->snap[i].seq] == s)
			rc |= snap_free(fw, &P->snap[i]);
	P->blk_free[P->nblk_free++] = s->blk;
	if (s->spare != UINT32_MAX)
		P->blk_free[P->nblk_free++] = s->spare;
	s->spare = UINT32_MAX;
	s->npg = 0;
	return rc ? -FW_EHAL : 0;
}

/* A draft row was accepted: its GDN state, in the spare handle, is the
 * sequence's.  The table row moves with it (same pages, same counts). */
int fw_pool_accept(struct fw *fw, struct fw_seq *s)
{
	uint32_t b = s->spare;

	if (b == UINT32_MAX)
		return -FW_EINVAL;
	if (s->npg && fw->hal.copy(fw->hal.ctx, bt_at(fw, b, 0), bt_at(fw, s->blk, 0),
				   (uint64_t)s->npg * 4))
		return -FW_EHAL;
	s->spare = s->blk;
	s->blk = b;
	return 0;
}

/* Drop s's state to make room; it runs its known tokens again later without
 * speaking until it passes where it was (recompute, as vLLM's preemption). */
int fw_pool_preempt(struct fw *fw, struct fw_seq *s)
{
	int rc = row_put(fw, s->blk, 0, s->npg);

	for (uint32_t i = 0; i < P->nblk; i++)
		if (P->snap[i].used && P->snap[i].pinned && &fw->seq[P->snap[i].seq] == s)
			rc |= snap_free(fw, &P->snap[i]);
	s->npg = 0;
	if (s->pos > s->emitted)
		s->emitted = s->pos;
	atomic_fetch_add_explicit(&fw->hal.ctrl->replayed, s->pos, memory_order_relaxed);
	atomic_fetch_add_explicit(&fw->hal.ctrl->preempted, 1, memory_order_relaxed);
	s->pos = 0;
	s->draft = -1;
	key_seed(fw, s->key);
	s->keyed = 0;
	return rc ? -FW_EHAL : state_set(fw, s->blk, UINT32_MAX);
}

/* Make sure the page holding position pos is in s's table. */
int fw_pool_page(struct fw *fw, struct fw_seq *s, uint32_t pos)
{
	uint32_t i = pos / KRNL_KV_PAGE, pg;
	int rc;

	if (i < s->npg)
		return 0;
	if (i >= P->tabw)
		return -FW_EINVAL;
	rc = page_get(fw, &pg);
	if (rc)
		return rc;
	if (fw->hal.write(fw->hal.ctx, bt_at(fw, s->blk, i), &pg, 4)) {
		page_put(fw, pg);
		return -FW_EHAL;
	}
	s->npg = i + 1;
	return 0;
}

/* ---- prefix cache ---- */

/* May s fill the cache (its prompt runs whole), and restore from it? */
static int cache_on(const struct fw *fw, const struct fw_seq *s)
{
	return P->every && !(s->flags & FW_SUB_NOCACHE);
}

static int cache_use(const struct fw *fw, const struct fw_seq *s)
{
	return cache_on(fw, s) && (!(s->flags & FW_SUB_LOGITS) || (s->flags & FW_SUB_CACHE));
}

static struct fw_snap *find(struct fw *fw, const uint64_t key[2], uint32_t npos, int32_t next)
{
	for (uint32_t i = 0; i < P->nblk; i++) {
		struct fw_snap *sn = &P->snap[i];

		if (sn->used && !sn->pinned && sn->npos == npos && sn->key[0] == key[0] &&
		    sn->key[1] == key[1] && sn->next == next)
			return sn;
	}
	return NULL;
}

/* At submit: restore the longest cached prefix of the prompt that leaves at
 * least one prompt token to run.  *got: positions restored. */
int fw_prefix_restore(struct fw *fw, struct fw_seq *s, uint32_t *got)
{
	uint64_t key[2];
	int32_t tok[KRNL_KV_PAGE];
	struct fw_snap *best = NULL;
	uint32_t pages = (s->n_prompt - 1) / KRNL_KV_PAGE;
	int any = 0;

	*got = 0;
	if (!cache_use(fw, s))
		return 0;
	for (uint32_t i = 0; i < P->nblk && !any; i++)
		any = P->snap[i].used && !P->snap[i].pinned;
	key[0] = s->key[0];
	key[1] = s->key[1];
	for (uint32_t k = 1; any && k <= pages; k++) {
		struct fw_snap *sn;

		if (fw->hal.read(fw->hal.ctx, tok_at(fw, s, (k - 1) * KRNL_KV_PAGE), tok,
				 sizeof(tok)))
			return -FW_EHAL;
		key_fold(key, tok, KRNL_KV_PAGE);
		sn = find(fw, key, k * KRNL_KV_PAGE, next_tok(fw, s, k * KRNL_KV_PAGE));
		if (sn)
			best = sn;
	}
	if (!best) {
		atomic_fetch_add_explicit(&fw->hal.ctrl->prefix_misses, 1, memory_order_relaxed);
		return 0;
	}
	int rc = restore(fw, s, best);
	if (rc)
		return rc;
	s->key[0] = best->key[0];
	s->key[1] = best->key[1];
	s->keyed = best->npos / KRNL_KV_PAGE;
	*got = best->npos;
	atomic_fetch_add_explicit(&fw->hal.ctrl->prefix_hits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&fw->hal.ctrl->prefix_tokens, best->npos, memory_order_relaxed);
	return 0;
}

/* Where the next prefix snapshot of s falls: every P->every positions and at
 * the last page boundary of its prompt. */
uint32_t fw_prefix_next(const struct fw *fw, const struct fw_seq *s)
{
	uint32_t last = s->n_prompt / KRNL_KV_PAGE * KRNL_KV_PAGE, nx;

	if (!cache_on(fw, s) || s->keyed == UINT32_MAX || s->pos >= last)
		return UINT32_MAX;
	nx = (s->pos / P->every + 1) * P->every;
	return nx < last ? nx : last;
}

/* After a step: fold the pages s completed into its key and, at a snapshot
 * boundary, keep its state in the cache. */
int fw_prefix_after(struct fw *fw, struct fw_seq *s)
{
	int32_t tok[KRNL_KV_PAGE];
	uint32_t id;

	if (!cache_on(fw, s) || s->keyed == UINT32_MAX || s->pos > s->n_prompt)
		return 0;
	while ((s->keyed + 1) * KRNL_KV_PAGE <= s->pos) {
		if (fw->hal.read(fw->hal.ctx, tok_at(fw, s, s->keyed * KRNL_KV_PAGE), tok,
				 sizeof(tok)))
			return -FW_EHAL;
		key_fold(s->key, tok, KRNL_KV_PAGE);
		s->keyed++;
	}
	if (s->pos % KRNL_KV_PAGE || s->pos == 0 ||
	    (s->pos % P->every && s->pos != s->n_prompt / KRNL_KV_PAGE * KRNL_KV_PAGE))
		return 0;
	struct fw_snap *old = find(fw, s->key, s->pos, next_tok(fw, s, s->pos));
	if (old) {
		old->used_at = ++P->tick;
		return 0;
	}
	if (snap_new(fw, s, 0, &id))
		return 0;	/* no room: the cache is best effort */
	atomic_fetch_add_explicit(&fw->hal.ctrl->prefix_stored, 1, memory_order_relaxed);
	return 0;
}
