/* chat.h — ChatML prompt formatting for Qwen chat models.
 *
 * Renders what the bundled tokenizer_config.json chat_template renders:
 *   for each message: "<|im_start|>" role "\n" content "<|im_end|>\n"
 *   then, with add_generation_prompt, "<|im_start|>assistant\n".
 * The bundled template adds no system message of its own.  Older Qwen
 * templates (Qwen2/2.5) insert a default system message when the first
 * message is not "system": nc_chat_default_system() finds that text in a
 * template and nc_chat_format_ex() applies it.
 */
#ifndef HOST_TEXT_CHAT_H
#define HOST_TEXT_CHAT_H

#include <stddef.h>

struct nc_chat_msg {
	const char *role;	/* "system", "user", "assistant", ... */
	const char *content;	/* NULL is taken as "" */
};

/* Writes the prompt (NUL-terminated when it fits) and returns its length
 * without the NUL; a return >= cap means out was too small.  -EINVAL on a
 * NULL role or msgs. */
long nc_chat_format(const struct nc_chat_msg *msgs, size_t n,
		    int add_generation_prompt, char *out, size_t cap);

/* As nc_chat_format; when default_system is non-NULL and the first message
 * is not a system message, a system message with that text comes first. */
long nc_chat_format_ex(const struct nc_chat_msg *msgs, size_t n,
		       int add_generation_prompt, const char *default_system,
		       char *out, size_t cap);

/* Default system text hard-coded in a chat template, if any: returns its
 * length (written NUL-terminated to out when it fits), 0 if the template has
 * none (the bundled one), -EINVAL on NULL template. */
long nc_chat_default_system(const char *chat_template, char *out, size_t cap);

#endif
