/* keys.c — API keys, quotas and usage by key name. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/keys.h"

#define KEY_MAX 256

struct slot {			/* one name: limits, buckets, usage */
	char name[64];
	uint32_t rpm, tpm, conc;
	double req_bucket, tok_bucket;
	uint64_t last_ns;
	uint32_t inflight;
	uint64_t requests, tokens, refused;
};

struct key {
	char key[KEY_MAX + 1];
	size_t len;
	int slot;
};

struct nc_keys {
	pthread_mutex_t mu;
	struct key keys[NC_KEYS_MAX];
	uint32_t nkeys;
	struct slot slots[NC_KEYS_MAX];
	uint32_t nslots;
};

static int slot_of(struct nc_keys *k, const char *name)
{
	for (uint32_t i = 0; i < k->nslots; i++)
		if (!strcmp(k->slots[i].name, name))
			return (int)i;
	if (k->nslots == NC_KEYS_MAX)
		return -1;
	struct slot *s = &k->slots[k->nslots];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	return (int)k->nslots++;
}

static int parse_u32(const char *v, uint32_t *out)
{
	char *end;
	unsigned long x = strtoul(v, &end, 10);

	if (!*v || *end || x > 100000000ul)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

/* Parse path into keys[] (and limits into a staging copy of the slots). */
static int parse(struct nc_keys *k, const char *path, struct key *keys, uint32_t *nkeys,
		 char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int ln = 0;

	*nkeys = 0;
	if (!f) {
		snprintf(err, errlen, "--keys %s: cannot open", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *tok, *hash = strchr(line, '#');
		char name[64];
		uint32_t rpm = 0, tpm = 0, conc = 0;
		struct key *kk;

		ln++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "--keys %s line %d: too long", path, ln);
			goto fail;
		}
		if (hash)
			*hash = 0;
		tok = strtok_r(line, " \t\r\n", &save);
		if (!tok)
			continue;
		if (strlen(tok) < 16 || strlen(tok) > KEY_MAX) {
			snprintf(err, errlen, "--keys %s line %d: a key is 16..256 characters", path, ln);
			goto fail;
		}
		for (const char *c = tok; *c; c++)
			if (*c < 0x21 || *c > 0x7e) {
				snprintf(err, errlen, "--keys %s line %d: a key is printable ASCII", path, ln);
				goto fail;
			}
		if (*nkeys == NC_KEYS_MAX) {
			snprintf(err, errlen, "--keys %s: more than %d keys", path, NC_KEYS_MAX);
			goto fail;
		}
		kk = &keys[*nkeys];
		snprintf(kk->key, sizeof(kk->key), "%s", tok);
		kk->len = strlen(tok);
		snprintf(name, sizeof(name), "key%d", ln);
		while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
			char *eq = strchr(tok, '=');
			int bad = !eq;

			if (eq) {
				*eq++ = 0;
				if (!strcmp(tok, "name") && *eq && strlen(eq) < sizeof(name) &&
				    strspn(eq, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == strlen(eq))
					snprintf(name, sizeof(name), "%s", eq);
				else if (!strcmp(tok, "rpm"))
					bad = parse_u32(eq, &rpm);
				else if (!strcmp(tok, "tpm"))
					bad = parse_u32(eq, &tpm);
				else if (!strcmp(tok, "concurrent"))
					bad = parse_u32(eq, &conc);
				else
					bad = 1;
			}
			if (bad) {
				snprintf(err, errlen, "--keys %s line %d: '%.40s' is not name=, rpm=, tpm= or"
					 " concurrent= (names: letters, digits, _ - .)", path, ln, tok);
				goto fail;
			}
		}
		for (uint32_t i = 0; i < *nkeys; i++)
			if (keys[i].len == kk->len && !memcmp(keys[i].key, kk->key, kk->len)) {
				snprintf(err, errlen, "--keys %s line %d: the same key twice", path, ln);
				goto fail;
			}
		kk->slot = slot_of(k, name);
		if (kk->slot < 0) {
			snprintf(err, errlen, "--keys %s: more than %d names", path, NC_KEYS_MAX);
			goto fail;
		}
		k->slots[kk->slot].rpm = rpm;
		k->slots[kk->slot].tpm = tpm;
		k->slots[kk->slot].conc = conc;
		(*nkeys)++;
	}
	fclose(f);
	if (!*nkeys) {
		snprintf(err, errlen, "--keys %s: no keys", path);
		return -1;
	}
	return 0;
fail:
	fclose(f);
	return -1;
}

int nc_keys_load(struct nc_keys **out, const char *path, char *err, size_t errlen)
{
	struct nc_keys *k = calloc(1, sizeof(*k));

	*out = NULL;
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_init(&k->mu, NULL);
	if (parse(k, path, k->keys, &k->nkeys, err, errlen)) {
		nc_keys_free(k);
		return -1;
	}
	*out = k;
	return 0;
}

int nc_keys_reload(struct nc_keys *k, const char *path, char *err, size_t errlen)
{
	struct nc_keys *tmp = calloc(1, sizeof(*tmp));	/* keys zero-padded: find() reads them whole */
	int rc;

	if (!tmp) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&k->mu);
	/* parse against a copy, so a bad file changes nothing */
	memcpy(tmp->slots, k->slots, sizeof(k->slots));
	tmp->nslots = k->nslots;
	rc = parse(tmp, path, tmp->keys, &tmp->nkeys, err, errlen);
	if (!rc) {
		memcpy(k->keys, tmp->keys, sizeof(k->keys));
		k->nkeys = tmp->nkeys;
		memcpy(k->slots, tmp->slots, sizeof(k->slots));
		k->nslots = tmp->nslots;
	}
	pthread_mutex_unlock(&k->mu);
	memset(tmp, 0, sizeof(*tmp));	/* keys do not linger in freed memory */
	free(tmp);
	return rc;
}

void nc_keys_free(struct nc_keys *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->mu);
	memset(k->keys, 0, sizeof(k->keys));
	free(k);
}

/* Constant time in the key's bytes: every key is compared in full. */
int nc_keys_find(struct nc_keys *k, const char *auth)
{
	const char *tok;
	size_t n;
	int found = -1;

	if (!auth || strncasecmp(auth, "Bearer ", 7))
		return -1;
	tok = auth + 7;
	while (*tok == ' ')
		tok++;
	n = strnlen(tok, KEY_MAX + 1);
	pthread_mutex_lock(&k->mu);
	for (uint32_t i = 0; i < k->nkeys; i++) {
		const struct key *kk = &k->keys[i];
		unsigned char diff = (unsigned char)(kk->len != n);

		for (size_t j = 0; j < KEY_MAX; j++)
			diff |= (unsigned char)((j < n ? (unsigned char)tok[j] : 0) ^
						(unsigned char)kk->key[j]);
		if (!diff)
			found = kk->slot;
	}
	pthread_mutex_unlock(&k->mu);
	return found;
}

static void refill(struct slot *s, uint64_t now)
{
	double dt = s->last_ns && now > s->last_ns ? (double)(now - s->last_ns) / 60e9 : 1.0;

	if (!s->last_ns) {
		s->req_bucket = s->rpm;
		s->tok_bucket = s->tpm;
	} else {
		s->req_bucket += dt * s->rpm;
		s->tok_bucket += dt * s->tpm;
	}
	if (s->req_bucket > s->rpm)
		s->req_bucket = s->rpm;
	if (s->tok_bucket > s->tpm)
		s->tok_bucket = s->tpm;
	s->last_ns = now;
}

uint32_t nc_keys_admit(struct nc_keys *k, int si, uint32_t tokens, uint64_t now_ns,
		       const char **why)
{
	struct slot *s;
	uint32_t wait = 0;

	pthread_mutex_lock(&k->mu);
	s = &k->slots[si];
	refill(s, now_ns);
	if (s->conc && s->inflight >= s->conc) {
		*why = "concurrent requests";
		wait = 1;
	} else if (s->rpm && s->req_bucket < 1.0) {
		*why = "requests per minute";
		wait = (uint32_t)((1.0 - s->req_bucket) * 60.0 / s->rpm) + 1;
	} else if (s->tpm && s->tok_bucket <= 0.0) {
		*why = "tokens per minute";
		wait = (uint32_t)(-s->tok_bucket * 60.0 / s->tpm) + 1;
	}
	if (wait) {
		s->refused++;
	} else {
		if (s->rpm)
			s->req_bucket -= 1.0;
		if (s->tpm)
			s->tok_bucket -= tokens;	/* may go negative: the debt waits */
		s->inflight++;
		s->requests++;
	}
	pthread_mutex_unlock(&k->mu);
	return wait;
}

void nc_keys_done(struct nc_keys *k, int si, uint32_t charged, uint32_t tokens)
{
	struct slot *s;

	pthread_mutex_lock(&k->mu);
	s = &k->slots[si];
	if (s->inflight)
		s->inflight--;
	s->tokens += tokens;
	if (s->tpm)
		s->tok_bucket += (double)charged - tokens;
	pthread_mutex_unlock(&k->mu);
}

uint32_t nc_keys_usage(struct nc_keys *k, struct nc_key_usage *out, uint32_t max)
{
	uint32_t n;

	pthread_mutex_lock(&k->mu);
	for (n = 0; n < k->nslots && n < max; n++) {
		snprintf(out[n].name, sizeof(out[n].name), "%s", k->slots[n].name);
		out[n].requests = k->slots[n].requests;
		out[n].tokens = k->slots[n].tokens;
		out[n].refused = k->slots[n].refused;
	}
	pthread_mutex_unlock(&k->mu);
	return n;
}
