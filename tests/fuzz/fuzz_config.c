/* fuzz_config.c — nc_config_parse on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fw_model_cfg cfg;
	char err[256];
	uint32_t i;
	int rc;

	err[0] = 0;
	rc = nc_config_parse((const char *)data, size, &cfg, err, sizeof(err));
	if (rc > 0 || (rc < 0 && !err[0]))
		abort();
	if (rc)
		return 0;
	/* an accepted config keeps the promises the firmware relies on */
	if (!cfg.n_layers || cfg.n_layers > FW_MAX_LAYERS ||
	    cfg.top_k > cfg.n_experts || cfg.n_heads % cfg.n_kv_heads ||
	    cfg.lin_nv % cfg.lin_nk || cfg.rope_dim % 2 ||
	    cfg.rope_dim > cfg.head_dim || !(cfg.rms_eps > 0) ||
	    cfg.eos_id >= (int32_t)cfg.vocab)
		abort();
	for (i = cfg.n_layers; i < FW_MAX_LAYERS; i++)
		if (cfg.layer_attn[i])
			abort();
	return 0;
}
