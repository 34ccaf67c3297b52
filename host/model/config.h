/* config.h — Hugging Face config.json of a Qwen3-Next model -> fw_model_cfg.
 *
 * Both dialects are read: transformers 5 (layer_types, rope_parameters) and
 * the 4.57 era (full_attention_interval, top-level rope_theta and
 * partial_rotary_factor).  Every field is validated; features the card does
 * not implement are rejected with a message that says "unsupported".
 *
 * Returns 0 or a negative -NC_CFG_ERR_* code, with a one-line message in
 * err (may be NULL).  The cfg is zeroed first, so two equal configs give
 * byte-identical structs.
 */
#ifndef HOST_MODEL_CONFIG_H
#define HOST_MODEL_CONFIG_H

#include <stddef.h>

#include "firmware/fw_model.h"

enum nc_cfg_err {
	NC_CFG_ERR_IO = 1,		/* config.json unreadable or too big */
	NC_CFG_ERR_NOMEM,
	NC_CFG_ERR_JSON,		/* not a JSON object */
	NC_CFG_ERR_MISSING,		/* a required key is absent */
	NC_CFG_ERR_TYPE,		/* a key has the wrong JSON type */
	NC_CFG_ERR_RANGE,		/* a value is out of range or inconsistent */
	NC_CFG_ERR_UNSUPPORTED,		/* valid for HF, not for this card */
};

#define NC_CONFIG_MAX_BYTES (1u << 20)

int nc_config_parse(const char *json, size_t len, struct fw_model_cfg *cfg,
		    char *err, size_t errlen);
int nc_config_load(const char *dir, struct fw_model_cfg *cfg, char *err,
		   size_t errlen);	/* reads DIR/config.json */
/* A model directory (its config.json) or a path ending in .json itself. */
int nc_config_load_path(const char *path, struct fw_model_cfg *cfg, char *err, size_t errlen);
const char *nc_config_strerror(int err);

#endif
