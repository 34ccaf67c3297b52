/* rng.h — the tests' seeded random numbers (splitmix64): reproducible draws,
 * never all zeros.  Included by the unit tests; everything is static inline. */
#ifndef TESTS_RNG_H
#define TESTS_RNG_H

#include <stdint.h>

struct rng {
	uint64_t s;
};

static inline uint64_t rng_next(struct rng *g)
{
	uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static inline double rng_unit(struct rng *g)
{
	return (double)(rng_next(g) >> 11) * 0x1.0p-53;
}

static inline float rng_range(struct rng *g, double lo, double hi)
{
	return (float)(lo + (hi - lo) * rng_unit(g));
}

static inline int rng_below(struct rng *g, int n)
{
	return (int)(rng_next(g) % (uint64_t)n);
}

#endif
