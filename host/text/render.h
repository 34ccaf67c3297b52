/* render.h — an OpenAI chat request through the model's own chat template.
 *
 * The template (host/text/jinja.h) sees what Hugging Face's
 * apply_chat_template gives it, with the request taken as vLLM takes it:
 *   messages               the request's, with content null as "" and a
 *                          list of parts joined (text parts, "\n" between);
 *                          assistant tool_calls[].function.arguments given
 *                          as a JSON string become the object it holds
 *   tools                  the request's tools, or None
 *   documents              None
 *   add_generation_prompt  the request's field, else the caller's default
 *   bos_token, eos_token, pad_token, unk_token   from tokenizer_config.json
 *   chat_template_kwargs   each member as a variable (enable_thinking, ...)
 * JSON numbers with an integral value are ints (JSON has one number type).
 */
#ifndef HOST_TEXT_RENDER_H
#define HOST_TEXT_RENDER_H

#include <stddef.h>
#include <cjson/cJSON.h>

struct nc_tokenizer;
struct nc_jinja;

/* Compile the tokenizer's chat template (or the file at override when not
 * NULL).  NULL with the reason in err: no template, or a construct the
 * interpreter does not take (the message names the line). */
struct nc_jinja *nc_render_compile(const struct nc_tokenizer *tok, const char *override,
				   char *err, size_t errlen);

/* The template's variables for a chat request object (see above); NULL with
 * err when the request is not an object with a messages list. */
cJSON *nc_render_vars(const struct nc_tokenizer *tok, const cJSON *req, int add_generation_prompt,
		      char *err, size_t errlen);

/* The prompt text of a chat request (malloc'd, *len bytes), or NULL with
 * err. */
char *nc_render_chat(const struct nc_jinja *t, const struct nc_tokenizer *tok, const cJSON *req,
		     int add_generation_prompt, size_t *len, char *err, size_t errlen);

#endif
