/* tokenizer.h — byte-level BPE tokenizer for the Qwen2/Qwen3 family.
 *
 * Loads a Hugging Face tokenizer.json and reproduces what
 * `tokenizers` does with it:  added (special) tokens are cut out of the raw
 * text first, the rest is normalised (NFC), split by the pre-tokenizer regex
 * (PCRE2, UTF + UCP), mapped to byte-level symbols and merged by BPE rank.
 *
 * Invalid UTF-8 input is not an error: it is first repaired the way
 * Python's bytes.decode('utf-8', errors='replace') does (each maximal
 * invalid subpart becomes U+FFFD), so encode(bytes) equals HF's
 * tokenizer.encode(bytes.decode('utf-8', 'replace')).
 *
 * Supported tokenizer.json subset (anything else is refused at load):
 * model BPE (merges "a b" or ["a","b"], ignore_merges; no dropout or
 * byte_fallback; a byte with no symbol is dropped, as with no unk);
 * normalizer null, NFC/NFD/NFKC/NFKD or a Sequence of them;
 * pre_tokenizer Split(Regex|String, Isolated) and ByteLevel (use_regex,
 * add_prefix_space), alone or in a Sequence; decoder ByteLevel.
 * Added tokens are all matched on the raw text; lstrip/rstrip/single_word
 * are ignored (Qwen sets them false).  post_processor is ignored (Qwen's
 * is null or ByteLevel, which only moves offsets).  Regexes run on PCRE2,
 * not Oniguruma: the one known difference is that \s also matches U+180E.
 *
 * Errors are negative errno values: -EINVAL bad argument or bad id,
 * -ENOMEM out of memory, -EIO file problems (load only).
 * A loaded tokenizer is read-only and may be shared between threads.
 */
#ifndef HOST_TEXT_TOKENIZER_H
#define HOST_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

struct nc_tokenizer; /* opaque */

/* Reads DIR/tokenizer.json (+ DIR/tokenizer_config.json if present). */
int nc_tok_load(struct nc_tokenizer **out, const char *model_dir, char *err,
		size_t errlen);
/* Same, from the text of a tokenizer.json already in memory. */
int nc_tok_load_json(struct nc_tokenizer **out, const char *json, size_t len,
		     char *err, size_t errlen);
void nc_tok_free(struct nc_tokenizer *tok);

/* Encode len bytes of text (special tokens recognised).  Writes up to cap ids
 * and returns the total count, which may exceed cap: call again with a bigger
 * buffer.  Negative on error. */
long nc_tok_encode(const struct nc_tokenizer *tok, const char *text, size_t len,
		   int32_t *ids, size_t cap);

/* Decode flags. */
#define NC_TOK_SKIP_SPECIAL 1u /* drop special added tokens (HF skip_special_tokens) */

/* Decode ids to UTF-8 (invalid byte runs become U+FFFD, as HF does).
 * Returns the full length, which may exceed cap (out is then truncated, not
 * terminated); -EINVAL on an id with no token.  Special tokens are kept. */
long nc_tok_decode(const struct nc_tokenizer *tok, const int32_t *ids, size_t n,
		   char *out, size_t cap);
long nc_tok_decode_ex(const struct nc_tokenizer *tok, const int32_t *ids,
		      size_t n, unsigned flags, char *out, size_t cap);

/* Id of a token by its exact vocabulary string (e.g. "<|im_end|>"), or -1. */
int32_t nc_tok_id(const struct nc_tokenizer *tok, const char *token);
/* One past the largest id, added tokens included. */
uint32_t nc_tok_vocab_size(const struct nc_tokenizer *tok);
/* 1 if id is a special added token, 0 if not, -EINVAL if out of range. */
int nc_tok_is_special(const struct nc_tokenizer *tok, int32_t id);
/* Ids named by tokenizer_config.json (eos_token, pad_token, bos_token);
 * -1 when absent. */
int32_t nc_tok_eos_id(const struct nc_tokenizer *tok);
int32_t nc_tok_pad_id(const struct nc_tokenizer *tok);
int32_t nc_tok_bos_id(const struct nc_tokenizer *tok);
/* The chat template: chat_template.jinja beside the tokenizer, else
 * tokenizer_config.json's chat_template; NULL when neither. */
const char *nc_tok_chat_template(const struct nc_tokenizer *tok);
/* tokenizer_config.json's "bos_token", "eos_token", "pad_token" or
 * "unk_token" as a string (what templates see), or NULL. */
const char *nc_tok_special(const struct nc_tokenizer *tok, const char *key);

/* Streaming detokenizer: feed ids one by one; only complete UTF-8 comes out.
 * The concatenated output of push... flush equals nc_tok_decode of the same
 * ids.  Set skip_special after init to drop special tokens. */
struct nc_detok {
	uint8_t pend[8]; /* bytes of an unfinished UTF-8 sequence */
	size_t npend;
	int skip_special;
};

void nc_detok_init(struct nc_detok *d);
/* Returns bytes written.  If they would exceed cap, nothing is written or
 * consumed and the needed size is returned: retry with a bigger buffer.
 * Output of one push is at most 3 * (token bytes + 3).  -EINVAL on a bad id. */
long nc_detok_push(struct nc_detok *d, const struct nc_tokenizer *tok,
		   int32_t id, char *out, size_t cap);
/* Emits U+FFFD for an unfinished sequence left at the end (as HF would). */
long nc_detok_flush(struct nc_detok *d, char *out, size_t cap);

#endif
